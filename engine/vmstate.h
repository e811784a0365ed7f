/* State tables: each device describes its state struct as a list of named,
 * typed fields. Snapshots save and restore through these tables, field by
 * field and by name, so a field added later only needs a default; the debug
 * dump prints them. */
#ifndef VIVARIUM_VMSTATE_H
#define VIVARIUM_VMSTATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <glib.h>

enum vmstate_type {
    VMSTATE_TYPE_BOOL,
    VMSTATE_TYPE_U8,
    VMSTATE_TYPE_U16,
    VMSTATE_TYPE_U32,
    VMSTATE_TYPE_U64,
    VMSTATE_TYPE_I32,
    VMSTATE_TYPE_I64,
    VMSTATE_TYPE_STRUCT, /* an embedded struct (or array of them) with its own table */
};

struct vmstate_desc;

struct vmstate_field {
    const char *name;
    enum vmstate_type type;
    size_t offset;
    size_t count;                   /* array elements; 1 for a scalar */
    size_t stride;                  /* bytes from one element to the next */
    const struct vmstate_desc *sub; /* VMSTATE_TYPE_STRUCT only */
};

struct vmstate_desc {
    const char *name;
    unsigned version;
    const struct vmstate_field *fields; /* ends with a field whose name is NULL */
};

#define VMSTATE_ARRAY_LEN(a)  (sizeof(a) / sizeof((a)[0]))
#define VMSTATE_MEMBER(st, f) (((st *)0)->f)

#define VMSTATE_SCALAR(st, f, t)                                                                   \
    {                                                                                              \
#f, t, offsetof(st, f), 1, sizeof(VMSTATE_MEMBER(st, f)), NULL                             \
    }
#define VMSTATE_ARRAY(st, f, t)                                                                    \
    {                                                                                              \
#f, t, offsetof(st, f), VMSTATE_ARRAY_LEN(VMSTATE_MEMBER(st, f)),                          \
            sizeof(VMSTATE_MEMBER(st, f)[0]), NULL                                                 \
    }

#define VMSTATE_BOOL(st, f)       VMSTATE_SCALAR(st, f, VMSTATE_TYPE_BOOL)
#define VMSTATE_U8(st, f)         VMSTATE_SCALAR(st, f, VMSTATE_TYPE_U8)
#define VMSTATE_U16(st, f)        VMSTATE_SCALAR(st, f, VMSTATE_TYPE_U16)
#define VMSTATE_U32(st, f)        VMSTATE_SCALAR(st, f, VMSTATE_TYPE_U32)
#define VMSTATE_U64(st, f)        VMSTATE_SCALAR(st, f, VMSTATE_TYPE_U64)
#define VMSTATE_I32(st, f)        VMSTATE_SCALAR(st, f, VMSTATE_TYPE_I32)
#define VMSTATE_I64(st, f)        VMSTATE_SCALAR(st, f, VMSTATE_TYPE_I64)
#define VMSTATE_BOOL_ARRAY(st, f) VMSTATE_ARRAY(st, f, VMSTATE_TYPE_BOOL)
#define VMSTATE_U8_ARRAY(st, f)   VMSTATE_ARRAY(st, f, VMSTATE_TYPE_U8)
#define VMSTATE_U16_ARRAY(st, f)  VMSTATE_ARRAY(st, f, VMSTATE_TYPE_U16)
#define VMSTATE_U32_ARRAY(st, f)  VMSTATE_ARRAY(st, f, VMSTATE_TYPE_U32)
#define VMSTATE_U64_ARRAY(st, f)  VMSTATE_ARRAY(st, f, VMSTATE_TYPE_U64)
#define VMSTATE_I64_ARRAY(st, f)  VMSTATE_ARRAY(st, f, VMSTATE_TYPE_I64)
#define VMSTATE_STRUCT(st, f, desc)                                                                \
    {                                                                                              \
#f, VMSTATE_TYPE_STRUCT, offsetof(st, f), 1, sizeof(VMSTATE_MEMBER(st, f)), &(desc)        \
    }
#define VMSTATE_STRUCT_ARRAY(st, f, desc)                                                          \
    {                                                                                              \
#f, VMSTATE_TYPE_STRUCT, offsetof(st, f), VMSTATE_ARRAY_LEN(VMSTATE_MEMBER(st, f)),        \
            sizeof(VMSTATE_MEMBER(st, f)[0]), &(desc)                                              \
    }
#define VMSTATE_END                                                                                \
    {                                                                                              \
        NULL, 0, 0, 0, 0, NULL                                                                     \
    }

/* Byte size of one element of a scalar type. */
size_t vmstate_type_size(enum vmstate_type type);

/* Appends the encoding of state, described by desc, to out: one record per
 * field with its name, type and element count, so a reader can skip what it
 * does not know. */
void vmstate_save(GByteArray *out, const struct vmstate_desc *desc, const void *state);

/* Decodes what vmstate_save wrote into state. Fields the table does not
 * have are skipped; fields the data does not have keep their values. Fails,
 * with *error set, on malformed data or a field whose type or count differs.
 * With state NULL it only validates. */
bool vmstate_load(const uint8_t *data, size_t len, const struct vmstate_desc *desc, void *state,
                  GError **error);

/* Prints every field as "prefix.name = value" lines, for --dump-state. */
void vmstate_dump(FILE *out, const char *prefix, const struct vmstate_desc *desc,
                  const void *state);

#endif
