/* fb_frame.c: see fb_frame.h. Byte-compatible with frugalai/protocols/frames.py. */
#include "fb_frame.h"

static void put_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)(v & 0xFFu);
}

uint16_t fb_crc16(const uint8_t *data, size_t len)
{
    /* Bitwise rather than a 512-byte table: nodes are flash-starved AVRs and frames are short. */
    uint16_t crc = 0xFFFFu;
    size_t i;
    int bit;
    for (i = 0; i < len; i++) {
        crc ^= (uint16_t)((uint16_t)data[i] << 8);
        for (bit = 0; bit < 8; bit++) {
            crc = (crc & 0x8000u) ? (uint16_t)((crc << 1) ^ 0x1021u) : (uint16_t)(crc << 1);
        }
    }
    return crc;
}

/* COBS over the concatenation a + b, so a frame needs no copy of the packet (RAM is scarce). */
static size_t cobs_encode2(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen,
                           uint8_t *out, size_t out_cap)
{
    size_t code_pos = 0, o = 1, i;
    uint8_t code = 1;
    int full = 0; /* the last block closed was a full 254-byte one */
    if (out_cap < 1) {
        return 0;
    }
    for (i = 0; i < alen + blen; i++) {
        uint8_t byte = i < alen ? a[i] : b[i - alen];
        full = 0;
        if (byte == 0) {
            out[code_pos] = code;
            code = 1;
            code_pos = o++;
            if (o > out_cap) {
                return 0;
            }
        } else {
            if (o >= out_cap) {
                return 0;
            }
            out[o++] = byte;
            code++;
            if (code == 0xFF) {
                out[code_pos] = code;
                code = 1;
                full = 1;
                code_pos = o++;
                if (o > out_cap) {
                    return 0;
                }
            }
        }
    }
    if (full) {
        return o - 1; /* data ended right after a full block: no final empty block */
    }
    out[code_pos] = code;
    return o;
}

size_t fb_cobs_encode(const uint8_t *in, size_t len, uint8_t *out, size_t out_cap)
{
    return cobs_encode2(in, len, in, 0, out, out_cap);
}

size_t fb_cobs_decode(const uint8_t *in, size_t len, uint8_t *out, size_t out_cap)
{
    size_t i = 0, o = 0, j;
    while (i < len) {
        uint8_t code = in[i];
        if (code == 0 || i + code > len) {
            return (size_t)-1;
        }
        for (j = 1; j < code; j++) {
            if (in[i + j] == 0 || o >= out_cap) {
                return (size_t)-1;
            }
            out[o++] = in[i + j];
        }
        i += code;
        if (code < 0xFF && i < len) {
            if (o >= out_cap) {
                return (size_t)-1;
            }
            out[o++] = 0;
        }
    }
    return o;
}

int fb_packet_begin(fb_packet *p, uint8_t *buf, size_t cap, uint16_t node_id, uint16_t seq)
{
    if (cap < FB_HEADER_SIZE) {
        return -1;
    }
    p->buf = buf;
    p->cap = cap;
    buf[0] = (uint8_t)FB_VERSION;
    put_u16(buf + 1, node_id);
    put_u16(buf + 3, seq);
    p->len = FB_HEADER_SIZE;
    return 0;
}

int fb_packet_add(fb_packet *p, uint8_t quantity, int32_t raw)
{
    uint32_t u = (uint32_t)raw; /* two's complement on the wire, big-endian */
    if (p->len + FB_READING_SIZE > p->cap || p->len + FB_READING_SIZE > FB_MAX_PACKET) {
        return -1;
    }
    p->buf[p->len] = quantity;
    p->buf[p->len + 1] = (uint8_t)(u >> 24);
    p->buf[p->len + 2] = (uint8_t)(u >> 16);
    p->buf[p->len + 3] = (uint8_t)(u >> 8);
    p->buf[p->len + 4] = (uint8_t)u;
    p->len += FB_READING_SIZE;
    return 0;
}

size_t fb_frame_encode(const uint8_t *packet, size_t len, uint8_t *out, size_t out_cap)
{
    uint8_t crc[2];
    size_t n;
    if (len > FB_MAX_PACKET) {
        return 0;
    }
    put_u16(crc, fb_crc16(packet, len));
    n = cobs_encode2(packet, len, crc, 2, out, out_cap);
    if (n == 0 || n >= out_cap) {
        return 0;
    }
    out[n] = 0;
    return n + 1;
}

size_t fb_frame_decode(const uint8_t *frame, size_t len, uint8_t *out, size_t out_cap)
{
    size_t n;
    if (len > 0 && frame[len - 1] == 0) {
        len--;
    }
    n = fb_cobs_decode(frame, len, out, out_cap);
    if (n == (size_t)-1 || n < FB_HEADER_SIZE + 2) {
        return (size_t)-1;
    }
    if (fb_crc16(out, n - 2) != (uint16_t)(((uint16_t)out[n - 2] << 8) | out[n - 1])) {
        return (size_t)-1;
    }
    return n - 2;
}
