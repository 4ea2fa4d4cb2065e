/*
 * Energy edge node: runs the energy-anomaly model ON the node and sends only events.
 *
 * Same wiring as energy_node (meter pulses on PULSE_PIN). Every 15-minute window (the model's
 * slot, FA_EF_SLOT_S) the node turns its pulse count into the window's mean power, computes
 * the model's features (robust residuals against its own daily profile: fa_energy_features.h),
 * runs the generated integer-only int8 net (fa_energy_anomaly.h, regenerated from the bundle by
 * `python -m frugalai.runtime.native models/energy-anomaly src/fa_energy_anomaly.h`) and the
 * card's alarm policy, and transmits a packet only when an alarm is raised or cleared:
 * anomaly_score (0.01), alarm (1 raised, 0 cleared), power_w. The same arithmetic as the
 * gateway's reference backend, bit for bit (tests/test_firmware_model.py).
 *
 * Time: the node needs the window's UNIX time for the day-of-week profile. EPOCH_AT_BOOT is a
 * placeholder: a real node sets it from an RTC or a time downlink.
 *
 * Memory: ~12 KiB of RAM for the profile (2 x 96 slots x 8 doubles) and ~0.3 KiB of flash for
 * the model: an ESP32 or a Cortex-M4 class board, not an AVR Uno.
 *
 * Link: #define FB_USE_LORA 1 for a bare packet over LoRa (arduino-LoRa, 868.1 MHz, SF9);
 * otherwise COBS frames on Serial (protocol=fb on the gateway).
 */
#include <fb_frame.h>
#include <fa_energy_anomaly.h>
#include <fa_energy_features.h>

#ifndef FB_USE_LORA
#define FB_USE_LORA 0
#endif
#if FB_USE_LORA
#include <LoRa.h>
#endif

#define NODE_ID 4
#define PULSE_PIN 2
#define WH_PER_PULSE 1.0
#define DEBOUNCE_US 20000UL
#define EPOCH_AT_BOOT 1704067200.0  /* 2024-01-01 00:00 UTC: set from an RTC in a real node */
#define WINDOW_MS (FA_EF_SLOT_S * 1000UL)

static volatile uint32_t pulses = 0;
static volatile uint32_t last_pulse_us = 0;
static uint16_t seq = 0;
static fa_ef_state model_state;

static void on_pulse(void)
{
    uint32_t now = micros();
    if (now - last_pulse_us < DEBOUNCE_US) {
        return;
    }
    last_pulse_us = now;
    pulses++;
}

static void send_event(double score, int alarm, double power_w)
{
    uint8_t packet[FB_HEADER_SIZE + 3 * FB_READING_SIZE];
    fb_packet p;
    fb_packet_begin(&p, packet, sizeof packet, NODE_ID, seq++);
    fb_packet_add(&p, FB_Q_ANOMALY_SCORE, (int32_t)(score * 100.0 + 0.5));
    fb_packet_add(&p, FB_Q_ALARM, alarm > 0 ? 1 : 0);
    fb_packet_add(&p, FB_Q_POWER_W, (int32_t)(power_w * 10.0 + 0.5));
#if FB_USE_LORA
    LoRa.beginPacket();
    LoRa.write(packet, p.len);
    LoRa.endPacket();
#else
    uint8_t frame[FB_MAX_FRAME];
    size_t n = fb_frame_encode(packet, p.len, frame, sizeof frame);
    Serial.write(frame, n);
#endif
}

void setup()
{
    Serial.begin(9600);
    pinMode(PULSE_PIN, INPUT_PULLUP);
    attachInterrupt(digitalPinToInterrupt(PULSE_PIN), on_pulse, FALLING);
    fa_ef_init(&model_state);
#if FB_USE_LORA
    LoRa.begin(868100000L);
    LoRa.setSpreadingFactor(9);
    LoRa.setSyncWord(0x12);
    LoRa.enableCrc();
#endif
}

void loop()
{
    static uint32_t window_start_ms = 0;
    static uint32_t windows = 0;
    if (millis() - window_start_ms < WINDOW_MS) {
        return;   /* a real node sleeps here, woken by the pulse interrupt and a timer */
    }
    window_start_ms += WINDOW_MS;

    noInterrupts();
    uint32_t count = pulses;
    pulses = 0;
    interrupts();

    double power_w = count * WH_PER_PULSE * 3600.0 / FA_EF_SLOT_S;   /* the window's mean */
    double start = EPOCH_AT_BOOT + (double)windows * FA_EF_SLOT_S;
    windows++;
    double row[FA_EF_WINDOW];
    if (!fa_ef_update(&model_state, start, power_w, row)) {
        return;   /* still learning the profile */
    }
    float y[FA_ENERGY_ANOMALY_N_OUTPUTS];
    FA_EF_MODEL_INT8(row, y);
    double score = fa_ef_score(y, FA_ENERGY_ANOMALY_N_OUTPUTS);
    int event = fa_ef_policy(&model_state, score);
    if (event != 0) {
        send_event(score, event, power_w);   /* the only transmission */
    }
}
