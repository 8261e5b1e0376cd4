#include "buffer.h"
#include <string.h>

// Frees the buffer's memory.
// The buffer may be used again afterwards.
void buffer_free(struct buffer *b)
{
    b->len = 0;
}

/** Appends n bytes to the buffer. */
int buffer_append(struct buffer *b, const char *bytes, size_t n) {
    memcpy(b->data + b->len, bytes, n);
    b->len += n;
    return 0;
}
