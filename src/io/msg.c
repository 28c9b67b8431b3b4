/*
 * Failure messages: one line, printf-formatted into the caller's buffer. Names from a file are untrusted, so
 * they are quoted, shortened and stripped of control characters before they appear in a message.
 */
#include <stdio.h>
#include <string.h>

#include "io/io_internal.h"

ttl_status_t io_fail(char *msg, size_t msg_len, ttl_status_t status, const char *fmt, ...) {
    if (msg != NULL && msg_len > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, msg_len, fmt, ap);
        va_end(ap);
    }
    return status;
}

const char *io_quote(char buf[IO_NAME_LEN], const char *name) {
    enum { keep = IO_NAME_LEN - 6 }; /* room for the quotes, "..." and the NUL */
    size_t o = 0, i = 0;
    buf[o++] = '\'';
    for (; name[i] != '\0' && i < (size_t)keep; ++i) {
        const unsigned char c = (unsigned char)name[i];
        buf[o++] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
    }
    if (name[i] != '\0') {
        /* do not end inside a UTF-8 sequence */
        while (o > 1 && ((unsigned char)buf[o - 1] & 0xc0u) == 0x80u) --o;
        if (o > 1 && ((unsigned char)buf[o - 1] & 0xc0u) == 0xc0u) --o;
        memcpy(buf + o, "...", 3);
        o += 3;
    }
    buf[o++] = '\'';
    buf[o] = '\0';
    return buf;
}

int io_utf8_valid(const unsigned char *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        const unsigned char c = s[i];
        if (c == 0) return 0;
        if (c < 0x80) {
            ++i;
            continue;
        }
        size_t len;
        uint32_t cp;
        if ((c & 0xe0u) == 0xc0u)
            len = 2, cp = c & 0x1fu;
        else if ((c & 0xf0u) == 0xe0u)
            len = 3, cp = c & 0x0fu;
        else if ((c & 0xf8u) == 0xf0u)
            len = 4, cp = c & 0x07u;
        else
            return 0;
        if (n - i < len) return 0;
        for (size_t k = 1; k < len; ++k) {
            if ((s[i + k] & 0xc0u) != 0x80u) return 0;
            cp = (cp << 6) | (s[i + k] & 0x3fu);
        }
        /* overlong forms, surrogates and values past U+10FFFF are invalid */
        if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10ffff ||
            (cp >= 0xd800 && cp <= 0xdfff))
            return 0;
        i += len;
    }
    return 1;
}
