#include <stddef.h>

/** A growable byte buffer. */
struct buffer {
    char *data;
    size_t len;
};

/** Appends n bytes to the buffer. */
int buffer_append(struct buffer *b, const char *bytes, size_t n);
