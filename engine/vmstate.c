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
