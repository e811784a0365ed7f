/* The engine's VNC server (libvncserver), on the same framebuffer and damage
 * as every other front end, with keyboard and pointer input into the guest.
 *
 * The server runs on a thread of ours that calls rfbProcessEvents() in a
 * loop: every client is served there, so when the engine stops, joining that
 * one thread leaves nobody inside libvncserver before it is torn down (its
 * own thread-per-client mode can still be running a client's handler while
 * rfbShutdownServer() frees it). Each frame, on the vCPU thread, the damaged
 * rectangles are copied from the engine's framebuffer into the server's
 * buffer and marked modified; only those rectangles travel to clients. Keys arrive as X keysyms and
 * become PC scan codes for a US layout.
 */
#include "vnc.h"

#include <arpa/inet.h>
#include <gio/gio.h>
#include <rfb/rfb.h>
#include <string.h>

#include "../machine.h"
#include "framebuffer.h"
#include "keymap.h"

struct vnc_server {
    struct machine *machine;
    struct display *display;
    rfbScreenInfoPtr screen;
    uint32_t *pixels;         /* the server's copy of the picture */
    uint32_t *retired_pixels; /* the buffer before the last resize */
    unsigned width, height;
    char *passwords[2];
    GThread *thread;
    gint stopping; /* set once, read by the server thread */

    /* Pointer state, touched only on the server's thread. */
    int last_x, last_y;
    bool have_position;
    int last_buttons;
};

static void vnc_key_event(rfbBool down, rfbKeySym keysym, rfbClientPtr client)
{
    struct vnc_server *vnc = client->screen->screenData;
    unsigned qnum = keymap_qnum_from_keysym(keysym);
    if (qnum)
        machine_post_key_event(vnc->machine, qnum, down);
}

/* VNC pointers are absolute; the PS/2 mouse is relative, so the server sends
 * the difference from the last position it saw. Buttons 4 and 5 are the
 * wheel. */
static void vnc_pointer_event(int mask, int x, int y, rfbClientPtr client)
{
    struct vnc_server *vnc = client->screen->screenData;
    int dx = vnc->have_position ? x - vnc->last_x : 0;
    int dy = vnc->have_position ? y - vnc->last_y : 0;
    vnc->last_x = x;
    vnc->last_y = y;
    vnc->have_position = true;
    int dz = 0;
    int pressed = mask & ~vnc->last_buttons;
    if (pressed & 8)
        dz -= 1;
    if (pressed & 16)
        dz += 1;
    unsigned buttons = (mask & 1 ? MOUSE_BUTTON_LEFT : 0) | (mask & 2 ? MOUSE_BUTTON_MIDDLE : 0) |
                       (mask & 4 ? MOUSE_BUTTON_RIGHT : 0);
    bool buttons_changed = (mask & 7) != (vnc->last_buttons & 7);
    vnc->last_buttons = mask;
    if (dx || dy || dz || buttons_changed)
        machine_post_pointer_event(vnc->machine, dx, dy, dz, buttons);
}

static void copy_rect(struct vnc_server *vnc, struct framebuffer *fb, const struct fb_rect *r)
{
    for (unsigned y = r->y; y < r->y + r->height; y++)
        memcpy(vnc->pixels + (size_t)y * vnc->width + r->x, framebuffer_row(fb, y) + r->x,
               (size_t)r->width * 4);
}

static void resize(struct vnc_server *vnc, struct framebuffer *fb)
{
    uint32_t *pixels = g_new0(uint32_t, (gsize)fb->width * fb->height);
    /* libvncserver may still be sending from the old buffer; it is freed at
     * the next resize, by when every client has moved on. */
    g_free(vnc->retired_pixels);
    vnc->retired_pixels = vnc->pixels;
    vnc->pixels = pixels;
    vnc->width = fb->width;
    vnc->height = fb->height;
    rfbNewFramebuffer(vnc->screen, (char *)pixels, (int)fb->width, (int)fb->height, 8, 3, 4);
    /* XRGB8888 in memory: blue in the low byte. */
    vnc->screen->serverFormat.redShift = 16;
    vnc->screen->serverFormat.greenShift = 8;
    vnc->screen->serverFormat.blueShift = 0;
}

/* The display's listener, on the vCPU thread after each frame with damage. */
static void vnc_frame(void *opaque, struct display *display, const struct fb_rect *rects,
                      unsigned count)
{
    struct vnc_server *vnc = opaque;
    struct framebuffer *fb = display->fb;
    if (fb->width != vnc->width || fb->height != vnc->height) {
        resize(vnc, fb);
        struct fb_rect all = {0, 0, fb->width, fb->height};
        copy_rect(vnc, fb, &all);
        rfbMarkRectAsModified(vnc->screen, 0, 0, (int)fb->width, (int)fb->height);
        return;
    }
    for (unsigned i = 0; i < count; i++) {
        copy_rect(vnc, fb, &rects[i]);
        rfbMarkRectAsModified(vnc->screen, (int)rects[i].x, (int)rects[i].y,
                              (int)(rects[i].x + rects[i].width),
                              (int)(rects[i].y + rects[i].height));
    }
}

static bool parse_address(const char *address, struct in_addr *host, int *port, GError **error)
{
    const char *colon = strrchr(address, ':');
    gchar *host_part = colon ? g_strndup(address, (gsize)(colon - address)) : g_strdup("127.0.0.1");
    const char *port_part = colon ? colon + 1 : address;
    char *end;
    long value = strtol(port_part, &end, 10);
    bool ok = *port_part && !*end && value > 0 && value < 65536 &&
              inet_pton(AF_INET, *host_part ? host_part : "127.0.0.1", host) == 1;
    if (!ok)
        g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                    "--vnc %s: give an IPv4 address and a port, e.g. 127.0.0.1:5901", address);
    *port = (int)value;
    g_free(host_part);
    return ok;
}

/* How long one rfbProcessEvents() call may wait for client traffic: also the
 * longest a shutdown waits for the server thread. */
#define VNC_POLL_USEC 20000

static gpointer vnc_thread(gpointer data)
{
    struct vnc_server *vnc = data;
    while (!g_atomic_int_get(&vnc->stopping))
        rfbProcessEvents(vnc->screen, VNC_POLL_USEC);
    return NULL;
}

struct vnc_server *vnc_server_create(struct machine *m, struct display *display,
                                     const char *address, const char *password, GError **error)
{
    struct in_addr host;
    int port;
    if (!parse_address(address, &host, &port, error))
        return NULL;

    struct vnc_server *vnc = g_new0(struct vnc_server, 1);
    vnc->machine = m;
    vnc->display = display;
    struct framebuffer *fb = display->fb;
    vnc->width = fb->width;
    vnc->height = fb->height;
    vnc->pixels = g_new0(uint32_t, (gsize)vnc->width * vnc->height);

    int argc = 0;
    vnc->screen = rfbGetScreen(&argc, NULL, (int)vnc->width, (int)vnc->height, 8, 3, 4);
    if (!vnc->screen) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "cannot set up the VNC server");
        g_free(vnc->pixels);
        g_free(vnc);
        return NULL;
    }
    rfbScreenInfoPtr screen = vnc->screen;
    screen->desktopName = "Vivarium";
    screen->frameBuffer = (char *)vnc->pixels;
    screen->serverFormat.redShift = 16;
    screen->serverFormat.greenShift = 8;
    screen->serverFormat.blueShift = 0;
    screen->alwaysShared = TRUE;
    screen->listenInterface = host.s_addr;
    screen->port = port;
    screen->ipv6port = 0; /* IPv4 only: the address given is all we listen on */
    screen->autoPort = FALSE;
    screen->screenData = vnc;
    screen->kbdAddEvent = vnc_key_event;
    screen->ptrAddEvent = vnc_pointer_event;
    if (password && *password) {
        vnc->passwords[0] = g_strdup(password);
        screen->authPasswdData = vnc->passwords;
        screen->passwordCheck = rfbCheckPasswordByList;
    }
    rfbInitServer(screen);
    if (screen->listenSock == RFB_INVALID_SOCKET) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_ADDRESS_IN_USE,
                    "--vnc %s: cannot listen there (in use, or not this machine's address)",
                    address);
        vnc_server_destroy(vnc);
        return NULL;
    }
    struct fb_rect all = {0, 0, fb->width, fb->height};
    copy_rect(vnc, fb, &all);
    vnc->thread = g_thread_new("vnc", vnc_thread, vnc);
    display_add_listener(display, vnc_frame, vnc);
    return vnc;
}

void vnc_server_destroy(struct vnc_server *vnc)
{
    if (!vnc)
        return;
    display_remove_listener(vnc->display, vnc_frame, vnc);
    if (vnc->thread) {
        g_atomic_int_set(&vnc->stopping, 1);
        g_thread_join(vnc->thread);
    }
    rfbShutdownServer(vnc->screen, TRUE);
    rfbScreenCleanup(vnc->screen);
    g_free(vnc->passwords[0]);
    g_free(vnc->pixels);
    g_free(vnc->retired_pixels);
    g_free(vnc);
}
