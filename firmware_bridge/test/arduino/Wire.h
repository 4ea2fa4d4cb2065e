/* Host stand-in: the sketches include Wire.h for the BMP280; nothing to do on a PC. */
#ifndef FB_HOST_WIRE_H
#define FB_HOST_WIRE_H
#endif
