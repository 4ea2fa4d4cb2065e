/* Host stand-in for the arduino-LoRa library: the packet between beginPacket and endPacket
 * is captured by host_main.cpp. */
#ifndef FB_HOST_LORA_H
#define FB_HOST_LORA_H
#include <stddef.h>
#include <stdint.h>
class LoRaClass {
public:
    int begin(long) { return 1; }
    void setSpreadingFactor(int) {}
    void setSyncWord(int) {}
    void enableCrc() {}
    int beginPacket();
    size_t write(const uint8_t *buf, size_t n);
    int endPacket();
};
extern LoRaClass LoRa;
#endif
