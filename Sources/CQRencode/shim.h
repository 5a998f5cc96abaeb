// libqrencode (Debian libqrencode-dev 4.1): QR codes (ISO/IEC 18004) for responder links, drawn as SVG by
// HallwatchWeb's QRCodeSVG. Nothing to wrap: the functions and the QRcode struct import as they are.
#ifndef HALLWATCH_CQRENCODE_SHIM_H
#define HALLWATCH_CQRENCODE_SHIM_H
#include <qrencode.h>
#endif
