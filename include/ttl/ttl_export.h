/* TTL_API marks the public symbols: the library is built with hidden visibility, so only these are exported. */
#ifndef TTL_TTL_EXPORT_H
#define TTL_TTL_EXPORT_H

#if defined(_WIN32)
#define TTL_API
#elif defined(__GNUC__) || defined(__clang__)
#define TTL_API __attribute__((visibility("default")))
#else
#define TTL_API
#endif

#endif /* TTL_TTL_EXPORT_H */
