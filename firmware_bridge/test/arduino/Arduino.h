/* Host stand-in for the Arduino core, enough to build and run the example sketches on a PC.
 * Time, ADC readings and interrupts are driven by host_main.cpp; Serial.write is captured. */
#ifndef FB_HOST_ARDUINO_H
#define FB_HOST_ARDUINO_H
#include <stddef.h>
#include <stdint.h>

#define A0 14
#define A1 15
#define INPUT_PULLUP 2
#define FALLING 2

extern uint32_t host_micros;
inline uint32_t micros() { return host_micros; }
inline uint32_t millis() { return host_micros / 1000u; }
int analogRead(uint8_t pin);
inline void pinMode(uint8_t, uint8_t) {}
inline int digitalPinToInterrupt(int pin) { return pin; }
void attachInterrupt(int irq, void (*isr)(void), int mode);
inline void noInterrupts() {}
inline void interrupts() {}

struct HardwareSerial {
    void begin(unsigned long) {}
    size_t write(const uint8_t *buf, size_t n);
};
extern HardwareSerial Serial;

void setup();
void loop();
#endif
