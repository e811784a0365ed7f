/* State tables: shared helpers. */
#include "vmstate.h"

#include <inttypes.h>
#include <stdbool.h>
#include <string.h>

size_t vmstate_type_size(enum vmstate_type type)
{
    switch (type) {
    case VMSTATE_TYPE_BOOL:
        return sizeof(bool);
    case VMSTATE_TYPE_U8:
        return 1;
    case VMSTATE_TYPE_U16:
        return 2;
    case VMSTATE_TYPE_U32:
    case VMSTATE_TYPE_I32:
        return 4;
    case VMSTATE_TYPE_U64:
    case VMSTATE_TYPE_I64:
        return 8;
    case VMSTATE_TYPE_STRUCT:
        return 0;
    }
    return 0;
}

static void dump_scalar(FILE *out, enum vmstate_type type, const void *p)
{
    switch (type) {
    case VMSTATE_TYPE_BOOL:
        fprintf(out, "%s", *(const bool *)p ? "true" : "false");
        break;
    case VMSTATE_TYPE_U8:
        fprintf(out, "%#" PRIx8, *(const uint8_t *)p);
        break;
    case VMSTATE_TYPE_U16:
        fprintf(out, "%#" PRIx16, *(const uint16_t *)p);
        break;
    case VMSTATE_TYPE_U32:
        fprintf(out, "%#" PRIx32, *(const uint32_t *)p);
        break;
    case VMSTATE_TYPE_U64:
        fprintf(out, "%#" PRIx64, *(const uint64_t *)p);
        break;
    case VMSTATE_TYPE_I32:
        fprintf(out, "%" PRId32, *(const int32_t *)p);
        break;
    case VMSTATE_TYPE_I64:
        fprintf(out, "%" PRId64, *(const int64_t *)p);
        break;
    case VMSTATE_TYPE_STRUCT:
        break;
    }
}

void vmstate_dump(FILE *out, const char *prefix, const struct vmstate_desc *desc, const void *state)
{
    for (const struct vmstate_field *f = desc->fields; f->name; f++) {
        const uint8_t *base = (const uint8_t *)state + f->offset;
        for (size_t i = 0; i < f->count; i++) {
            const uint8_t *elem = base + i * f->stride;
            char name[256];
            if (f->count > 1)
                snprintf(name, sizeof(name), "%s.%s[%zu]", prefix, f->name, i);
            else
                snprintf(name, sizeof(name), "%s.%s", prefix, f->name);
            if (f->type == VMSTATE_TYPE_STRUCT) {
                vmstate_dump(out, name, f->sub, elem);
                continue;
            }
            fprintf(out, "%s = ", name);
            dump_scalar(out, f->type, elem);
            fputc('\n', out);
        }
    }
}

/* The encoding, all little-endian:
 *   field  := u8 name_len (0 ends the list), name, u8 type, u32 count,
 *             u32 payload_len, payload
 *   payload of a scalar field: count elements of the type's size (bool: 1)
 *   payload of a struct field: count times (u32 length, field list)
 */

static void put_u8(GByteArray *out, uint8_t v)
{
    g_byte_array_append(out, &v, 1);
}

static void put_u32(GByteArray *out, uint32_t v)
{
    uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    g_byte_array_append(out, b, 4);
}

static void patch_u32(GByteArray *out, size_t at, uint32_t v)
{
    out->data[at] = (uint8_t)v;
    out->data[at + 1] = (uint8_t)(v >> 8);
    out->data[at + 2] = (uint8_t)(v >> 16);
    out->data[at + 3] = (uint8_t)(v >> 24);
}

static size_t encoded_size(enum vmstate_type type)
{
    return type == VMSTATE_TYPE_BOOL ? 1 : vmstate_type_size(type);
}

static void save_scalar(GByteArray *out, enum vmstate_type type, const uint8_t *p)
{
    uint64_t v = 0;
    switch (type) {
    case VMSTATE_TYPE_BOOL:
        v = *(const bool *)p;
        break;
    case VMSTATE_TYPE_U8:
        v = *p;
        break;
    case VMSTATE_TYPE_U16:
        v = *(const uint16_t *)p;
        break;
    case VMSTATE_TYPE_U32:
    case VMSTATE_TYPE_I32:
        v = *(const uint32_t *)p;
        break;
    case VMSTATE_TYPE_U64:
    case VMSTATE_TYPE_I64:
        v = *(const uint64_t *)p;
        break;
    case VMSTATE_TYPE_STRUCT:
        return;
    }
    for (size_t i = 0; i < encoded_size(type); i++)
        put_u8(out, (uint8_t)(v >> (8 * i)));
}

void vmstate_save(GByteArray *out, const struct vmstate_desc *desc, const void *state)
{
    for (const struct vmstate_field *f = desc->fields; f->name; f++) {
        size_t name_len = strlen(f->name);
        put_u8(out, (uint8_t)name_len);
        g_byte_array_append(out, (const guint8 *)f->name, (guint)name_len);
        put_u8(out, (uint8_t)f->type);
        put_u32(out, (uint32_t)f->count);
        size_t payload_at = out->len;
        put_u32(out, 0);
        const uint8_t *base = (const uint8_t *)state + f->offset;
        for (size_t i = 0; i < f->count; i++) {
            const uint8_t *elem = base + i * f->stride;
            if (f->type == VMSTATE_TYPE_STRUCT) {
                size_t elem_at = out->len;
                put_u32(out, 0);
                vmstate_save(out, f->sub, elem);
                patch_u32(out, elem_at, (uint32_t)(out->len - elem_at - 4));
            } else {
                save_scalar(out, f->type, elem);
            }
        }
        patch_u32(out, payload_at, (uint32_t)(out->len - payload_at - 4));
    }
    put_u8(out, 0);
}

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void load_scalar(enum vmstate_type type, const uint8_t *in, uint8_t *p)
{
    uint64_t v = 0;
    for (size_t i = 0; i < encoded_size(type); i++)
        v |= (uint64_t)in[i] << (8 * i);
    switch (type) {
    case VMSTATE_TYPE_BOOL:
        *(bool *)p = v != 0;
        break;
    case VMSTATE_TYPE_U8:
        *p = (uint8_t)v;
        break;
    case VMSTATE_TYPE_U16:
        *(uint16_t *)p = (uint16_t)v;
        break;
    case VMSTATE_TYPE_U32:
    case VMSTATE_TYPE_I32:
        *(uint32_t *)p = (uint32_t)v;
        break;
    case VMSTATE_TYPE_U64:
    case VMSTATE_TYPE_I64:
        *(uint64_t *)p = v;
        break;
    case VMSTATE_TYPE_STRUCT:
        break;
    }
}

static const struct vmstate_field *find_field(const struct vmstate_desc *desc, const char *name,
                                              size_t name_len)
{
    for (const struct vmstate_field *f = desc->fields; f->name; f++) {
        if (strlen(f->name) == name_len && memcmp(f->name, name, name_len) == 0)
            return f;
    }
    return NULL;
}

static bool malformed(GError **error, const struct vmstate_desc *desc, const char *what)
{
    g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_INVAL, "state of %s: %s", desc->name, what);
    return false;
}

bool vmstate_load(const uint8_t *data, size_t len, const struct vmstate_desc *desc, void *state,
                  GError **error)
{
    size_t pos = 0;
    for (;;) {
        if (pos >= len)
            return malformed(error, desc, "the field list is truncated");
        size_t name_len = data[pos++];
        if (name_len == 0)
            return pos == len ? true : malformed(error, desc, "bytes follow the field list");
        if (len - pos < name_len + 1 + 4 + 4)
            return malformed(error, desc, "a field header is truncated");
        const char *name = (const char *)data + pos;
        pos += name_len;
        uint8_t type = data[pos++];
        uint32_t count = get_u32(data + pos);
        uint32_t payload_len = get_u32(data + 4 + pos);
        pos += 8;
        if (payload_len > len - pos)
            return malformed(error, desc, "a field's data is truncated");
        const uint8_t *payload = data + pos;
        pos += payload_len;

        const struct vmstate_field *f = find_field(desc, name, name_len);
        if (!f)
            continue; /* written by a version that had this field; ours does not */
        if (f->type != type || f->count != count) {
            g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                        "state of %s: field %s has type %u x %u, expected %u x %zu", desc->name,
                        f->name, type, count, f->type, f->count);
            return false;
        }
        uint8_t *base = state ? (uint8_t *)state + f->offset : NULL;
        if (f->type != VMSTATE_TYPE_STRUCT) {
            if (payload_len != count * encoded_size(f->type))
                return malformed(error, desc, "a field's size does not match its type");
            for (size_t i = 0; base && i < count; i++)
                load_scalar(f->type, payload + i * encoded_size(f->type), base + i * f->stride);
            continue;
        }
        size_t at = 0;
        for (size_t i = 0; i < count; i++) {
            if (payload_len - at < 4)
                return malformed(error, desc, "a structure is truncated");
            uint32_t elem_len = get_u32(payload + at);
            at += 4;
            if (elem_len > payload_len - at)
                return malformed(error, desc, "a structure is truncated");
            if (!vmstate_load(payload + at, elem_len, f->sub, base ? base + i * f->stride : NULL,
                              error))
                return false;
            at += elem_len;
        }
        if (at != payload_len)
            return malformed(error, desc, "a structure array has trailing bytes");
    }
}
