/* Runs an example sketch on the host: `host_main <seconds> [pulse_period_ms] [adc_A0] [adc_A1]
 * [air_pa] [air_c]`. Time advances 1 ms a step; a pulse interrupt fires every pulse_period_ms
 * (0: none); loop() runs every step. What the sketch sends (Serial bytes, or each LoRa packet
 * as a line) is printed as hex on stdout, one line per write/packet, for the Python test to
 * decode with the gateway's own decoder. */
#include <stdio.h>
#include <stdlib.h>
#include "Arduino.h"
#include "Adafruit_BMP280.h"
#include "LoRa.h"

uint32_t host_micros = 0;
float host_air_pa = 101325.0f;
float host_air_c = 20.0f;
HardwareSerial Serial;
LoRaClass LoRa;
static int adc[2] = {0, 0};
static void (*isr)(void) = 0;
static uint8_t lora_buf[256];
static size_t lora_len = 0;

int analogRead(uint8_t pin) { return adc[pin == A1 ? 1 : 0]; }
void attachInterrupt(int, void (*handler)(void), int) { isr = handler; }

static void print_hex(const char *tag, const uint8_t *buf, size_t n)
{
    printf("%s ", tag);
    for (size_t i = 0; i < n; i++) printf("%02x", buf[i]);
    printf("\n");
}

size_t HardwareSerial::write(const uint8_t *buf, size_t n) { print_hex("serial", buf, n); return n; }
int LoRaClass::beginPacket() { lora_len = 0; return 1; }
size_t LoRaClass::write(const uint8_t *buf, size_t n)
{
    for (size_t i = 0; i < n && lora_len < sizeof lora_buf; i++) lora_buf[lora_len++] = buf[i];
    return n;
}
int LoRaClass::endPacket() { print_hex("lora", lora_buf, lora_len); return 1; }

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s seconds [pulse_period_ms] [adc_A0] [adc_A1] [air_pa] [air_c]\n",
                argv[0]);
        return 2;
    }
    long seconds = atol(argv[1]);
    long pulse_ms = argc > 2 ? atol(argv[2]) : 0;
    adc[0] = argc > 3 ? atoi(argv[3]) : 0;
    adc[1] = argc > 4 ? atoi(argv[4]) : 0;
    host_air_pa = argc > 5 ? (float)atof(argv[5]) : host_air_pa;
    host_air_c = argc > 6 ? (float)atof(argv[6]) : host_air_c;
    host_micros = 1000;  /* millis() == 0 is "never reported" for some sketches */
    setup();
    for (long ms = 1; ms <= seconds * 1000L; ms++) {
        host_micros += 1000;
        if (pulse_ms > 0 && isr && ms % pulse_ms == 0) isr();
        loop();
    }
    return 0;
}
