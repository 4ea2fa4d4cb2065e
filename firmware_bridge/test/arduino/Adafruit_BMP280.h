/* Host stand-in for the Adafruit BMP280 driver: values set by host_main.cpp. */
#ifndef FB_HOST_BMP280_H
#define FB_HOST_BMP280_H
#include <stdint.h>
extern float host_air_pa;
extern float host_air_c;
class Adafruit_BMP280 {
public:
    bool begin(uint8_t) { return true; }
    float readPressure() { return host_air_pa; }
    float readTemperature() { return host_air_c; }
};
#endif
