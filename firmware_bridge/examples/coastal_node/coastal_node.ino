/*
 * Coastal node: water level from a submersible pressure transducer plus a barometer, over
 * serial or LoRa.
 *
 * Sensors: an absolute-pressure transducer (0.5-4.5 V for 0-PMAX_KPA) on LEVEL_PIN at the
 * bottom of a stilling well, and a BMP280 barometer (I2C) in the enclosure. The water column is
 * (P_water - P_air) / (rho * g): subtracting the barometer removes the weather from the level,
 * which is what the gateway's tide model wants (water_level_m, pressure_hpa for the surge).
 *
 * Link: #define FB_USE_LORA 1 to send the bare packet with the arduino-LoRa library
 * (868.1 MHz, SF9); otherwise COBS frames on Serial at 9600 8N1 (protocol=fb on the gateway).
 * The radio checks integrity itself, so the LoRa payload carries no COBS and no CRC.
 */
#include <Wire.h>
#include <Adafruit_BMP280.h>
#include <fb_frame.h>

#ifndef FB_USE_LORA
#define FB_USE_LORA 0
#endif
#if FB_USE_LORA
#include <LoRa.h>
#endif

#define NODE_ID 12
#define LEVEL_PIN A1
#define BATTERY_PIN A0          /* through a 1:2 divider */
#define PMAX_KPA 200.0          /* transducer full scale (absolute) */
#define SENSOR_DEPTH_M 0.0      /* level of the sensor relative to the chart datum */
#define RHO_SEAWATER 1025.0
#define G 9.80665
#define REPORT_MS 360000UL      /* 6 minutes, the tide-gauge standard */

static Adafruit_BMP280 bmp;
static uint16_t seq = 0;

static double transducer_pa(void)
{
    /* average 16 samples: waves and ADC noise */
    uint32_t acc = 0;
    for (int i = 0; i < 16; i++) {
        acc += analogRead(LEVEL_PIN);
    }
    double volts = (acc / 16.0) * 5.0 / 1023.0;
    return (volts - 0.5) / 4.0 * PMAX_KPA * 1000.0;
}

void setup()
{
    Serial.begin(9600);
    bmp.begin(0x76);
#if FB_USE_LORA
    LoRa.begin(868100000L);
    LoRa.setSpreadingFactor(9);
    LoRa.setSyncWord(0x12);     /* private network, not LoRaWAN's 0x34 */
    LoRa.enableCrc();
#endif
}

void loop()
{
    static uint32_t last_report = 0;
    static bool reported = false;   /* report at once after boot, then every REPORT_MS */
    if (reported && millis() - last_report < REPORT_MS) {
        return;
    }
    reported = true;
    last_report = millis();

    double air_pa = bmp.readPressure();
    double water_m = (transducer_pa() - air_pa) / (RHO_SEAWATER * G) + SENSOR_DEPTH_M;

    uint8_t packet[FB_HEADER_SIZE + 4 * FB_READING_SIZE];
    fb_packet p;
    fb_packet_begin(&p, packet, sizeof packet, NODE_ID, seq++);
    fb_packet_add(&p, FB_Q_WATER_LEVEL_M, (int32_t)(water_m * 1000.0 + (water_m >= 0 ? 0.5 : -0.5)));
    fb_packet_add(&p, FB_Q_PRESSURE_HPA, (int32_t)(air_pa + 0.5));
    fb_packet_add(&p, FB_Q_TEMPERATURE_C, (int32_t)(bmp.readTemperature() * 100.0));
    fb_packet_add(&p, FB_Q_BATTERY_V, (int32_t)(analogRead(BATTERY_PIN) * (2.0 * 5000.0 / 1023.0)));

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
