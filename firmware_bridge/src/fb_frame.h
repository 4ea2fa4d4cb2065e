/*
 * fb_frame: the sensor-node side of the firmware_bridge protocol (C99, no malloc, no stdio).
 *
 * Packet (the same bytes over every link; sent bare over LoRa):
 *   version u8 (=1) | node_id u16 BE | seq u16 BE | n x (quantity u8, value i32 BE)
 * Serial frame:  COBS(packet + crc16_ccitt(packet) BE) 0x00
 *
 * value = raw integer in the quantity's fixed unit (FB_Q_* below): water level in mm,
 * pressure in Pa (0.01 hPa), battery in mV, ... The gateway side is frugalai/protocols/frames.py;
 * both are tested against ../test_vectors.json.
 */
#ifndef FB_FRAME_H
#define FB_FRAME_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define FB_VERSION 1u
#define FB_HEADER_SIZE 5u
#define FB_READING_SIZE 5u
#define FB_MAX_READINGS 48u
#define FB_MAX_PACKET (FB_HEADER_SIZE + FB_READING_SIZE * FB_MAX_READINGS)
/* COBS adds one byte per 254, plus the CRC (2) and the 0x00 delimiter. */
#define FB_MAX_FRAME (FB_MAX_PACKET + 2u + (FB_MAX_PACKET + 2u) / 254u + 2u)

/* Quantity ids and their raw units (append only, never renumber; mirror of frames.QUANTITIES). */
#define FB_Q_ENERGY_TOTAL_WH 1u     /* Wh */
#define FB_Q_POWER_W 2u             /* 0.1 W */
#define FB_Q_WATER_LEVEL_M 3u       /* mm */
#define FB_Q_PRESSURE_HPA 4u        /* Pa (0.01 hPa) */
#define FB_Q_BATTERY_V 5u           /* mV */
#define FB_Q_TEMPERATURE_C 6u       /* 0.01 degC */
#define FB_Q_PULSE_COUNT 7u         /* pulses */
#define FB_Q_HUMIDITY_PCT 8u        /* 0.01 % */
#define FB_Q_WATER_TEMPERATURE_C 9u /* 0.01 degC */
#define FB_Q_RSSI_DBM 10u           /* dBm */
#define FB_Q_ANOMALY_SCORE 11u      /* 0.01 (a model's anomaly score, sent by an edge node) */
#define FB_Q_ALARM 12u              /* 1 alarm raised, 0 cleared (an edge node's event) */

/* Builds a packet in a caller-owned buffer (at least FB_MAX_PACKET bytes for a full one). */
typedef struct {
    uint8_t *buf;
    size_t cap;
    size_t len;
} fb_packet;

/* CRC-16/CCITT-FALSE: poly 0x1021, init 0xFFFF; fb_crc16("123456789", 9) == 0x29B1. */
uint16_t fb_crc16(const uint8_t *data, size_t len);

/* COBS-encode len bytes (no delimiter added). Returns the encoded length, or 0 if out_cap is
 * too small (the output is at most len + len / 254 + 1 bytes). */
size_t fb_cobs_encode(const uint8_t *in, size_t len, uint8_t *out, size_t out_cap);

/* COBS-decode; returns the decoded length, or (size_t)-1 on a malformed input or a full out. */
size_t fb_cobs_decode(const uint8_t *in, size_t len, uint8_t *out, size_t out_cap);

/* Start a packet; returns 0, or -1 if cap < FB_HEADER_SIZE. */
int fb_packet_begin(fb_packet *p, uint8_t *buf, size_t cap, uint16_t node_id, uint16_t seq);

/* Append one reading; returns 0, or -1 if the buffer or the reading count is full. */
int fb_packet_add(fb_packet *p, uint8_t quantity, int32_t raw);

/* Frame a packet for a serial line: COBS(packet + crc) + 0x00. Returns the frame length, or 0
 * if out_cap is too small (FB_MAX_FRAME always suffices) or len > FB_MAX_PACKET. */
size_t fb_frame_encode(const uint8_t *packet, size_t len, uint8_t *out, size_t out_cap);

/* Unframe (with or without the trailing 0x00) and check the CRC; returns the packet length,
 * or (size_t)-1 on bad COBS, bad CRC, a short frame or a full out. */
size_t fb_frame_decode(const uint8_t *frame, size_t len, uint8_t *out, size_t out_cap);

#ifdef __cplusplus
}
#endif

#endif /* FB_FRAME_H */
