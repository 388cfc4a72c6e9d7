// zlib (Debian: zlib1g-dev; ships with macOS).
#include <zlib.h>
