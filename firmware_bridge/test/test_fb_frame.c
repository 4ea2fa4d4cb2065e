/* Host unit tests of fb_frame against the shared vectors (generated header from the JSON). */
#include <stdio.h>
#include <string.h>

#include "fb_frame.h"
#include "vectors.h"

static int failures = 0;
static int checks = 0;

#define CHECK(cond, ...)                                          \
    do {                                                          \
        checks++;                                                 \
        if (!(cond)) {                                            \
            failures++;                                           \
            printf("FAIL %s:%d: ", __FILE__, __LINE__);           \
            printf(__VA_ARGS__);                                  \
            printf("\n");                                         \
        }                                                         \
    } while (0)

static void test_crc(void)
{
    size_t i;
    for (i = 0; i < N_VECS(CRC_VECS); i++) {
        unsigned got = fb_crc16(CRC_VECS[i].data, CRC_VECS[i].len);
        CHECK(got == CRC_VECS[i].crc, "crc vector %zu: got 0x%04x, expected 0x%04x", i, got, CRC_VECS[i].crc);
    }
}

static void test_cobs(void)
{
    uint8_t out[600];
    size_t i, n;
    for (i = 0; i < N_VECS(COBS_VECS); i++) {
        const cobs_vec *v = &COBS_VECS[i];
        n = fb_cobs_encode(v->data, v->len, out, sizeof out);
        CHECK(n == v->enc_len && memcmp(out, v->enc, n) == 0, "cobs encode vector %zu (len %zu)", i, n);
        n = fb_cobs_decode(v->enc, v->enc_len, out, sizeof out);
        CHECK(n == v->len && memcmp(out, v->data, n) == 0, "cobs decode vector %zu", i);
        /* an output one byte too small is refused, never overrun */
        CHECK(fb_cobs_encode(v->data, v->len, out, v->enc_len - 1) == 0, "cobs overflow vector %zu", i);
    }
}

static void test_packets(void)
{
    uint8_t buf[FB_MAX_PACKET], frame[FB_MAX_FRAME], back[FB_MAX_PACKET];
    fb_packet p;
    size_t i, j, n;
    for (i = 0; i < N_VECS(PACKET_VECS); i++) {
        const packet_vec *v = &PACKET_VECS[i];
        CHECK(fb_packet_begin(&p, buf, sizeof buf, (uint16_t)v->node_id, (uint16_t)v->seq) == 0, "begin");
        for (j = 0; j < v->n; j++) {
            CHECK(fb_packet_add(&p, v->readings[j].qid, v->readings[j].raw) == 0, "add %zu", j);
        }
        CHECK(p.len == v->packet_len && memcmp(buf, v->packet, p.len) == 0, "packet vector %zu", i);
        n = fb_frame_encode(buf, p.len, frame, sizeof frame);
        CHECK(n == v->frame_len && memcmp(frame, v->frame, n) == 0, "frame vector %zu (len %zu vs %zu)", i, n,
              v->frame_len);
        n = fb_frame_decode(v->frame, v->frame_len, back, sizeof back);
        CHECK(n == v->packet_len && memcmp(back, v->packet, n) == 0, "frame decode vector %zu", i);
        CHECK(fb_frame_encode(buf, p.len, frame, v->frame_len - 1) == 0, "frame overflow vector %zu", i);
    }
}

static void test_bad_frames(void)
{
    uint8_t out[FB_MAX_PACKET + 2];
    size_t i;
    for (i = 0; i < N_VECS(BAD_VECS); i++) {
        size_t n = fb_frame_decode(BAD_VECS[i].frame, BAD_VECS[i].len, out, sizeof out);
        /* the C decoder checks framing and CRC only; version and length are the gateway's job */
        if (strcmp(BAD_VECS[i].why, "crc") == 0) {
            CHECK(n == (size_t)-1, "bad frame '%s' accepted", BAD_VECS[i].why);
        } else {
            CHECK(n != (size_t)-1, "bad frame '%s' has a valid CRC and should unframe", BAD_VECS[i].why);
        }
    }
}

static void test_limits(void)
{
    uint8_t buf[FB_MAX_PACKET + 10];
    fb_packet p;
    unsigned k;
    CHECK(fb_packet_begin(&p, buf, 4, 1, 1) == -1, "begin with a tiny buffer");
    CHECK(fb_packet_begin(&p, buf, sizeof buf, 1, 1) == 0, "begin");
    for (k = 0; k < FB_MAX_READINGS; k++) {
        CHECK(fb_packet_add(&p, FB_Q_BATTERY_V, (int32_t)k) == 0, "add %u", k);
    }
    CHECK(fb_packet_add(&p, FB_Q_BATTERY_V, 1) == -1, "reading %u past the limit accepted", k);
    CHECK(p.len == FB_MAX_PACKET, "full packet length");
    CHECK(fb_cobs_decode((const uint8_t *)"\x03\x01", 2, buf, sizeof buf) == (size_t)-1, "short cobs block");
    CHECK(fb_cobs_decode((const uint8_t *)"\x02\x00", 2, buf, sizeof buf) == (size_t)-1, "zero in cobs block");
}

int main(void)
{
    test_crc();
    test_cobs();
    test_packets();
    test_bad_frames();
    test_limits();
    printf("fb_frame: %d checks, %d failures\n", checks, failures);
    return failures ? 1 : 0;
}
