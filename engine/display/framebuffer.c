/* The engine's framebuffer, its damage list, and the display refresh step. */
#include "framebuffer.h"

#include <errno.h>
#include <fcntl.h>
#include <png.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* Beyond this many separate rectangles a consumer is better served by one
 * bounding box than by a long list of small updates. */
#define MAX_DAMAGE_RECTS 64

struct fb_mapping {
    int fd;
    uint32_t *pixels;
    size_t size;
};

static bool fb_mapping_create(struct fb_mapping *map, unsigned width, unsigned height)
{
    map->size = (size_t)width * height * 4;
    map->fd = memfd_create("vivarium-framebuffer", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (map->fd < 0)
        return false;
    if (ftruncate(map->fd, (off_t)map->size) < 0) {
        close(map->fd);
        return false;
    }
    /* The fd is handed to the app, which must not be able to change the
     * file's size under the engine's mapping (a new size is a new memfd). */
    fcntl(map->fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);
    void *p = mmap(NULL, map->size, PROT_READ | PROT_WRITE, MAP_SHARED, map->fd, 0);
    if (p == MAP_FAILED) {
        close(map->fd);
        return false;
    }
    map->pixels = p;
    return true;
}

struct framebuffer *framebuffer_new(unsigned width, unsigned height)
{
    struct framebuffer *fb = g_new0(struct framebuffer, 1);
    g_mutex_init(&fb->lock);
    fb->damage = g_array_new(FALSE, FALSE, sizeof(struct fb_rect));
    fb->fd = -1;
    width = CLAMP(width, 1, FRAMEBUFFER_MAX_WIDTH);
    height = CLAMP(height, 1, FRAMEBUFFER_MAX_HEIGHT);
    struct fb_mapping map;
    if (!fb_mapping_create(&map, width, height)) {
        framebuffer_free(fb);
        return NULL;
    }
    fb->fd = map.fd;
    fb->pixels = map.pixels;
    fb->map_size = map.size;
    fb->width = width;
    fb->height = height;
    fb->stride = width * 4;
    return fb;
}

void framebuffer_free(struct framebuffer *fb)
{
    if (!fb)
        return;
    if (fb->pixels)
        munmap(fb->pixels, fb->map_size);
    if (fb->fd >= 0)
        close(fb->fd);
    g_array_free(fb->damage, TRUE);
    g_mutex_clear(&fb->lock);
    g_free(fb);
}

bool framebuffer_resize(struct framebuffer *fb, unsigned width, unsigned height)
{
    width = CLAMP(width, 1, FRAMEBUFFER_MAX_WIDTH);
    height = CLAMP(height, 1, FRAMEBUFFER_MAX_HEIGHT);
    if (width == fb->width && height == fb->height)
        return false;
    struct fb_mapping map;
    if (!fb_mapping_create(&map, width, height))
        return false;

    g_mutex_lock(&fb->lock);
    munmap(fb->pixels, fb->map_size);
    close(fb->fd);
    fb->fd = map.fd;
    fb->pixels = map.pixels;
    fb->map_size = map.size;
    fb->width = width;
    fb->height = height;
    fb->stride = width * 4;
    fb->generation++;
    /* Rectangles of the old geometry mean nothing now. */
    g_array_set_size(fb->damage, 0);
    struct fb_rect all = {0, 0, width, height};
    g_array_append_val(fb->damage, all);
    g_mutex_unlock(&fb->lock);
    return true;
}

static bool rect_contains(const struct fb_rect *outer, const struct fb_rect *inner)
{
    return inner->x >= outer->x && inner->y >= outer->y &&
           inner->x + inner->width <= outer->x + outer->width &&
           inner->y + inner->height <= outer->y + outer->height;
}

static struct fb_rect rect_union(const struct fb_rect *a, const struct fb_rect *b)
{
    unsigned x0 = MIN(a->x, b->x), y0 = MIN(a->y, b->y);
    unsigned x1 = MAX(a->x + a->width, b->x + b->width);
    unsigned y1 = MAX(a->y + a->height, b->y + b->height);
    return (struct fb_rect){x0, y0, x1 - x0, y1 - y0};
}

void framebuffer_add_damage(struct framebuffer *fb, unsigned x, unsigned y, unsigned width,
                            unsigned height)
{
    if (x >= fb->width || y >= fb->height || width == 0 || height == 0)
        return;
    struct fb_rect r = {x, y, MIN(width, fb->width - x), MIN(height, fb->height - y)};

    g_mutex_lock(&fb->lock);
    for (guint i = 0; i < fb->damage->len; i++) {
        struct fb_rect *old = &g_array_index(fb->damage, struct fb_rect, i);
        if (rect_contains(old, &r))
            goto out;
        /* Stacked spans of the same columns (scanline runs) join into one. */
        bool same_columns = old->x == r.x && old->width == r.width;
        bool touching = r.y <= old->y + old->height && old->y <= r.y + r.height;
        if ((same_columns && touching) || rect_contains(&r, old)) {
            *old = rect_union(old, &r);
            goto out;
        }
    }
    if (fb->damage->len >= MAX_DAMAGE_RECTS) {
        struct fb_rect box = r;
        for (guint i = 0; i < fb->damage->len; i++)
            box = rect_union(&box, &g_array_index(fb->damage, struct fb_rect, i));
        g_array_set_size(fb->damage, 0);
        r = box;
    }
    g_array_append_val(fb->damage, r);
out:
    g_mutex_unlock(&fb->lock);
}

unsigned framebuffer_take_damage(struct framebuffer *fb, GArray *out)
{
    g_mutex_lock(&fb->lock);
    unsigned n = fb->damage->len;
    if (n)
        g_array_append_vals(out, fb->damage->data, n);
    g_array_set_size(fb->damage, 0);
    g_mutex_unlock(&fb->lock);
    return n;
}

void framebuffer_lock(struct framebuffer *fb)
{
    g_mutex_lock(&fb->lock);
}

void framebuffer_unlock(struct framebuffer *fb)
{
    g_mutex_unlock(&fb->lock);
}

struct display *display_new(void)
{
    struct framebuffer *fb = framebuffer_new(640, 480);
    if (!fb)
        return NULL;
    struct display *display = g_new0(struct display, 1);
    display->fb = fb;
    display->listeners = g_array_new(FALSE, FALSE, sizeof(struct display_listener));
    display->frame_damage = g_array_new(FALSE, FALSE, sizeof(struct fb_rect));
    return display;
}

void display_free(struct display *display)
{
    if (!display)
        return;
    framebuffer_free(display->fb);
    g_array_free(display->listeners, TRUE);
    g_array_free(display->frame_damage, TRUE);
    g_free(display);
}

void display_set_source(struct display *display, const struct display_source *source)
{
    display->source = *source;
}

void display_add_listener(struct display *display, display_listener_fn fn, void *opaque)
{
    struct display_listener listener = {.fn = fn, .opaque = opaque};
    g_array_append_val(display->listeners, listener);
}

void display_remove_listener(struct display *display, display_listener_fn fn, void *opaque)
{
    for (guint i = 0; i < display->listeners->len; i++) {
        struct display_listener *l = &g_array_index(display->listeners, struct display_listener, i);
        if (l->fn == fn && l->opaque == opaque) {
            g_array_remove_index(display->listeners, i);
            return;
        }
    }
}

void display_update(struct display *display)
{
    display->frames++;
    if (!display->source.render)
        return;
    display->source.render(display->source.opaque, display->fb);
    if (display->listeners->len == 0)
        return;
    g_array_set_size(display->frame_damage, 0);
    unsigned count = framebuffer_take_damage(display->fb, display->frame_damage);
    if (count == 0)
        return;
    const struct fb_rect *rects = (const struct fb_rect *)display->frame_damage->data;
    for (guint i = 0; i < display->listeners->len; i++) {
        struct display_listener *l = &g_array_index(display->listeners, struct display_listener, i);
        l->fn(l->opaque, display, rects, count);
    }
}

bool display_screenshot_png(struct framebuffer *fb, const char *path, GError **error)
{
    framebuffer_lock(fb);
    unsigned width = fb->width, height = fb->height;
    uint8_t *rgb = g_try_malloc((size_t)width * height * 3);
    if (!rgb) {
        framebuffer_unlock(fb);
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_NOMEM, "%s: out of memory", path);
        return false;
    }
    for (unsigned y = 0; y < height; y++) {
        const uint32_t *src = framebuffer_row(fb, y);
        uint8_t *dst = rgb + (size_t)y * width * 3;
        for (unsigned x = 0; x < width; x++) {
            dst[3 * x + 0] = (uint8_t)(src[x] >> 16);
            dst[3 * x + 1] = (uint8_t)(src[x] >> 8);
            dst[3 * x + 2] = (uint8_t)src[x];
        }
    }
    framebuffer_unlock(fb);

    png_image image = {
        .version = PNG_IMAGE_VERSION, .width = width, .height = height, .format = PNG_FORMAT_RGB};
    bool ok = png_image_write_to_file(&image, path, 0, rgb, (png_int_32)width * 3, NULL);
    if (!ok)
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_FAILED, "%s: cannot write PNG: %s", path,
                    image.message);
    png_image_free(&image);
    g_free(rgb);
    return ok;
}
