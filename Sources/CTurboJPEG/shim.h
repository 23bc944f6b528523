#ifndef NN_CTURBOJPEG_SHIM_H
#define NN_CTURBOJPEG_SHIM_H
/* libjpeg-turbo's TurboJPEG API: every call returns an error code (it catches libjpeg's
   longjmp-based errors inside the library), so Swift calls it directly. */
#include <turbojpeg.h>
#endif
