/* Links against an installed libttl and calls it (scripts/check-install.sh). */
#include <stdio.h>
#include "ttl/ttl.h"
int main(void) {
    int64_t modes[3];
    if (ttl_factorize(modes, 512, 3) != TTL_STATUS_SUCCESS) return 1;
    printf("libttl %s: 512 = %lld x %lld x %lld\n", ttl_version(), (long long)modes[0], (long long)modes[1],
           (long long)modes[2]);
    return 0;
}
