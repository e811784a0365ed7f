/* The engine's picture of the guest screen.
 *
 * A framebuffer is XRGB8888 pixels (one little-endian uint32_t per pixel,
 * 0x00RRGGBB) in a memfd, so the app can map the same pages after receiving
 * the fd once. A resize replaces the memfd (the generation counter says so);
 * consumers map the new one and drop stale damage.
 *
 * Threads: the vCPU thread renders into the pixels and changes the geometry;
 * other threads only read. Resizing and the damage list are guarded by the
 * framebuffer's lock, and a reader holds it (framebuffer_lock) for as long as
 * it touches the pixels, so the mapping cannot vanish under it.
 *
 * A display joins a framebuffer to the device that paints it (the VGA):
 * display_update(), called at the guest's refresh rate, asks the source to
 * render what changed and then hands the damage to the listeners.
 */
#ifndef VIVARIUM_DISPLAY_FRAMEBUFFER_H
#define VIVARIUM_DISPLAY_FRAMEBUFFER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <glib.h>

#define FRAMEBUFFER_MAX_WIDTH  4096
#define FRAMEBUFFER_MAX_HEIGHT 4096

struct fb_rect {
    unsigned x, y, width, height;
};

struct framebuffer {
    GMutex lock;
    int fd; /* the memfd holding the pixels */
    uint32_t *pixels;
    size_t map_size;
    unsigned width, height;
    unsigned stride;     /* bytes from one row to the next */
    uint64_t generation; /* bumped each time the memfd is replaced */
    GArray *damage;      /* struct fb_rect, not yet collected */
};

/* A black framebuffer of the given size; NULL if the memfd cannot be made. */
struct framebuffer *framebuffer_new(unsigned width, unsigned height);
void framebuffer_free(struct framebuffer *fb);

/* Changes the geometry (clamped to 1..FRAMEBUFFER_MAX_*), replacing the
 * memfd with a new, black one; returns false if nothing changed or memory
 * ran out (then the old buffer stays). A resize damages the whole picture. */
bool framebuffer_resize(struct framebuffer *fb, unsigned width, unsigned height);

static inline uint32_t *framebuffer_row(struct framebuffer *fb, unsigned y)
{
    return (uint32_t *)((uint8_t *)fb->pixels + (size_t)y * fb->stride);
}

/* Records that a rectangle changed; it is clipped to the picture. */
void framebuffer_add_damage(struct framebuffer *fb, unsigned x, unsigned y, unsigned width,
                            unsigned height);
/* Moves every recorded rectangle into out (appended) and returns how many. */
unsigned framebuffer_take_damage(struct framebuffer *fb, GArray *out);

void framebuffer_lock(struct framebuffer *fb);
void framebuffer_unlock(struct framebuffer *fb);

/* What paints a display: render draws whatever changed since its last call
 * into fb (resizing it if the guest's mode changed) and adds damage. */
struct display_source {
    void (*render)(void *opaque, struct framebuffer *fb);
    void *opaque;
};

struct display;

/* A consumer of frames (the D-Bus service, the VNC server, the SDL window),
 * told on the vCPU thread of every refresh that changed something, with the
 * rectangles that changed. */
typedef void (*display_listener_fn)(void *opaque, struct display *display,
                                    const struct fb_rect *rects, unsigned count);

struct display_listener {
    display_listener_fn fn;
    void *opaque;
};

struct display {
    struct framebuffer *fb;
    struct display_source source;
    GArray *listeners;    /* struct display_listener */
    GArray *frame_damage; /* struct fb_rect, the refresh being announced */
    uint64_t frames;      /* display_update calls so far */
};

/* A display with a 640x480 black framebuffer and no source yet. */
struct display *display_new(void);
void display_free(struct display *display);
void display_set_source(struct display *display, const struct display_source *source);
/* Listeners are added and removed while the vCPU thread is not running. With
 * none, damage accumulates in the framebuffer for framebuffer_take_damage(). */
void display_add_listener(struct display *display, display_listener_fn fn, void *opaque);
void display_remove_listener(struct display *display, display_listener_fn fn, void *opaque);

/* One refresh: the source renders what changed, the listeners hear of it. */
void display_update(struct display *display);

/* Writes the current picture as an 8-bit RGB PNG. */
bool display_screenshot_png(struct framebuffer *fb, const char *path, GError **error);

#endif
