/*
 * Energy node: counts the S0 / LED pulses of an electricity meter and reports to the gateway.
 *
 * Wiring: S0 output (or a photodiode on the meter's LED) to PULSE_PIN (an interrupt pin), with
 * the pull-up enabled. WH_PER_PULSE is the meter's constant (1000 imp/kWh -> 1 Wh per pulse).
 * Sends every REPORT_MS: energy_total_wh (the pulse counter), power_w (from the interval
 * between the last two pulses, which stays accurate at low load where counting pulses per
 * report would read zero), battery_v.
 *
 * Output: firmware_bridge frames on Serial (9600 8N1): COBS(packet + CRC16) 0x00.
 * Gateway: serial:///dev/ttyUSB0?protocol=fb
 */
#include <fb_frame.h>

#define NODE_ID 3
#define PULSE_PIN 2
#define BATTERY_PIN A0          /* through a 1:2 divider */
#define WH_PER_PULSE 1UL
#define REPORT_MS 60000UL
#define DEBOUNCE_US 20000UL     /* S0 pulses are >= 30 ms; ignore bounces */

static volatile uint32_t pulses = 0;
static volatile uint32_t last_pulse_us = 0;
static volatile uint32_t pulse_interval_us = 0;
static uint16_t seq = 0;

static void on_pulse(void)
{
    uint32_t now = micros();
    uint32_t dt = now - last_pulse_us;
    if (dt < DEBOUNCE_US) {
        return;
    }
    pulse_interval_us = dt;
    last_pulse_us = now;
    pulses++;
}

void setup()
{
    Serial.begin(9600);
    pinMode(PULSE_PIN, INPUT_PULLUP);
    attachInterrupt(digitalPinToInterrupt(PULSE_PIN), on_pulse, FALLING);
}

void loop()
{
    static uint32_t last_report = 0;
    if (millis() - last_report < REPORT_MS) {
        return;
    }
    last_report = millis();

    noInterrupts();
    uint32_t count = pulses;
    uint32_t interval = pulse_interval_us;
    uint32_t since = micros() - last_pulse_us;
    interrupts();

    /* P = E_pulse / dt. With no pulse for longer than the last interval, the load dropped:
     * bound the power by the time since the last pulse instead of reporting a stale value. */
    uint32_t dt = since > interval ? since : interval;
    int32_t power_dw = dt ? (int32_t)((3600.0e6 * 10.0 * WH_PER_PULSE) / (double)dt) : 0;
    int32_t battery_mv = (int32_t)(analogRead(BATTERY_PIN) * (2.0 * 5000.0 / 1023.0));

    uint8_t packet[FB_HEADER_SIZE + 3 * FB_READING_SIZE];
    uint8_t frame[FB_MAX_FRAME];
    fb_packet p;
    fb_packet_begin(&p, packet, sizeof packet, NODE_ID, seq++);
    fb_packet_add(&p, FB_Q_ENERGY_TOTAL_WH, (int32_t)(count * WH_PER_PULSE));
    fb_packet_add(&p, FB_Q_POWER_W, count ? power_dw : 0);
    fb_packet_add(&p, FB_Q_BATTERY_V, battery_mv);
    size_t n = fb_frame_encode(packet, p.len, frame, sizeof frame);
    Serial.write(frame, n);
}
