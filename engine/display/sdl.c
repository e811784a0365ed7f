/* --display sdl: the engine's own SDL2 window, a light way to use a VM
 * without the app. The picture scales with the window, keeping its aspect
 * ratio (or by whole multiples with integer scaling); a click grabs keyboard
 * and mouse, Ctrl+Alt releases them.
 *
 * SDL lives on the main thread. Frames are announced from the vCPU thread:
 * the damaged area is accumulated under a lock and the main loop is woken to
 * upload just that area into the streaming texture.
 */
#include "sdl.h"

#include <SDL.h>
#include <gio/gio.h>

#include "../machine.h"
#include "framebuffer.h"
#include "keymap.h"

#define SDL_TITLE         "Vivarium"
#define SDL_TITLE_GRABBED "Vivarium (press Ctrl+Alt to release the mouse)"

struct sdl_window {
    struct machine *machine;
    struct display *display;
    bool integer_scaling;
    SDL_Window *window;
    SDL_Renderer *renderer;
    SDL_Texture *texture;
    unsigned texture_width, texture_height;
    guint poll_source;

    GMutex lock; /* guards the fields below, shared with the vCPU thread */
    bool dirty;
    unsigned dirty_x0, dirty_y0, dirty_x1, dirty_y1;

    bool grabbed;
    bool ctrl_down, alt_down;
    unsigned buttons;
};

static void set_grab(struct sdl_window *sdl, bool grab)
{
    sdl->grabbed = grab;
    SDL_SetRelativeMouseMode(grab ? SDL_TRUE : SDL_FALSE);
    SDL_SetWindowKeyboardGrab(sdl->window, grab ? SDL_TRUE : SDL_FALSE);
    SDL_SetWindowTitle(sdl->window, grab ? SDL_TITLE_GRABBED : SDL_TITLE);
}

/* Uploads the damaged area (or the whole picture after a resize) and
 * presents the frame. Main thread. */
static void present(struct sdl_window *sdl)
{
    struct framebuffer *fb = sdl->display->fb;
    g_mutex_lock(&sdl->lock);
    bool dirty = sdl->dirty;
    SDL_Rect area = {(int)sdl->dirty_x0, (int)sdl->dirty_y0, (int)(sdl->dirty_x1 - sdl->dirty_x0),
                     (int)(sdl->dirty_y1 - sdl->dirty_y0)};
    sdl->dirty = false;
    g_mutex_unlock(&sdl->lock);
    if (!dirty)
        return;

    framebuffer_lock(fb);
    if (!sdl->texture || fb->width != sdl->texture_width || fb->height != sdl->texture_height) {
        if (sdl->texture)
            SDL_DestroyTexture(sdl->texture);
        sdl->texture =
            SDL_CreateTexture(sdl->renderer, SDL_PIXELFORMAT_RGB888, SDL_TEXTUREACCESS_STREAMING,
                              (int)fb->width, (int)fb->height);
        sdl->texture_width = fb->width;
        sdl->texture_height = fb->height;
        SDL_RenderSetLogicalSize(sdl->renderer, (int)fb->width, (int)fb->height);
        area = (SDL_Rect){0, 0, (int)fb->width, (int)fb->height};
    }
    if (area.x + area.w > (int)fb->width || area.y + area.h > (int)fb->height)
        area = (SDL_Rect){0, 0, (int)fb->width, (int)fb->height};
    if (area.w > 0 && area.h > 0)
        SDL_UpdateTexture(sdl->texture, &area, framebuffer_row(fb, (unsigned)area.y) + area.x,
                          (int)fb->stride);
    framebuffer_unlock(fb);

    SDL_SetRenderDrawColor(sdl->renderer, 0, 0, 0, 255);
    SDL_RenderClear(sdl->renderer);
    SDL_RenderCopy(sdl->renderer, sdl->texture, NULL, NULL);
    SDL_RenderPresent(sdl->renderer);
}

static void handle_key(struct sdl_window *sdl, const SDL_KeyboardEvent *key)
{
    bool down = key->type == SDL_KEYDOWN;
    SDL_Scancode code = key->keysym.scancode;
    if (code == SDL_SCANCODE_LCTRL || code == SDL_SCANCODE_RCTRL)
        sdl->ctrl_down = down;
    if (code == SDL_SCANCODE_LALT || code == SDL_SCANCODE_RALT)
        sdl->alt_down = down;
    if (sdl->grabbed && sdl->ctrl_down && sdl->alt_down) {
        /* The release combination goes to the guest as released keys. */
        set_grab(sdl, false);
        machine_post_key_event(sdl->machine, QNUM_LEFT_CTRL, false);
        machine_post_key_event(sdl->machine, QNUM_LEFT_ALT, false);
        return;
    }
    if (key->repeat && !down)
        return;
    unsigned qnum = keymap_qnum_from_usb_hid((unsigned)code);
    if (qnum)
        machine_post_key_event(sdl->machine, qnum, down);
}

static unsigned button_bit(Uint8 button)
{
    switch (button) {
    case SDL_BUTTON_LEFT:
        return MOUSE_BUTTON_LEFT;
    case SDL_BUTTON_RIGHT:
        return MOUSE_BUTTON_RIGHT;
    case SDL_BUTTON_MIDDLE:
        return MOUSE_BUTTON_MIDDLE;
    }
    return 0;
}

static gboolean poll_cb(gpointer data)
{
    struct sdl_window *sdl = data;
    SDL_Event event;
    while (SDL_PollEvent(&event)) {
        switch (event.type) {
        case SDL_QUIT:
            machine_post(sdl->machine, machine_work_quit, NULL);
            break;
        case SDL_KEYDOWN:
        case SDL_KEYUP:
            handle_key(sdl, &event.key);
            break;
        case SDL_MOUSEBUTTONDOWN:
        case SDL_MOUSEBUTTONUP:
            if (!sdl->grabbed) {
                if (event.type == SDL_MOUSEBUTTONDOWN)
                    set_grab(sdl, true);
                break;
            }
            if (event.type == SDL_MOUSEBUTTONDOWN)
                sdl->buttons |= button_bit(event.button.button);
            else
                sdl->buttons &= ~button_bit(event.button.button);
            machine_post_pointer_event(sdl->machine, 0, 0, 0, sdl->buttons);
            break;
        case SDL_MOUSEMOTION:
            if (sdl->grabbed)
                machine_post_pointer_event(sdl->machine, event.motion.xrel, event.motion.yrel, 0,
                                           sdl->buttons);
            break;
        case SDL_MOUSEWHEEL:
            if (sdl->grabbed && event.wheel.y)
                machine_post_pointer_event(sdl->machine, 0, 0, -event.wheel.y, sdl->buttons);
            break;
        case SDL_WINDOWEVENT:
            if (event.window.event == SDL_WINDOWEVENT_FOCUS_LOST && sdl->grabbed)
                set_grab(sdl, false);
            if (event.window.event == SDL_WINDOWEVENT_EXPOSED ||
                event.window.event == SDL_WINDOWEVENT_SIZE_CHANGED) {
                g_mutex_lock(&sdl->lock);
                sdl->dirty = true;
                sdl->dirty_x0 = sdl->dirty_y0 = 0;
                sdl->dirty_x1 = sdl->dirty_y1 = G_MAXUINT;
                g_mutex_unlock(&sdl->lock);
            }
            break;
        }
    }
    present(sdl);
    return G_SOURCE_CONTINUE;
}

/* The display's listener, on the vCPU thread: remembers the damaged area;
 * the main loop's next poll uploads it. */
static void sdl_frame(void *opaque, struct display *display, const struct fb_rect *rects,
                      unsigned count)
{
    struct sdl_window *sdl = opaque;
    (void)display;
    g_mutex_lock(&sdl->lock);
    for (unsigned i = 0; i < count; i++) {
        unsigned x1 = rects[i].x + rects[i].width, y1 = rects[i].y + rects[i].height;
        if (!sdl->dirty) {
            sdl->dirty_x0 = rects[i].x;
            sdl->dirty_y0 = rects[i].y;
            sdl->dirty_x1 = x1;
            sdl->dirty_y1 = y1;
            sdl->dirty = true;
            continue;
        }
        sdl->dirty_x0 = MIN(sdl->dirty_x0, rects[i].x);
        sdl->dirty_y0 = MIN(sdl->dirty_y0, rects[i].y);
        sdl->dirty_x1 = MAX(sdl->dirty_x1, x1);
        sdl->dirty_y1 = MAX(sdl->dirty_y1, y1);
    }
    g_mutex_unlock(&sdl->lock);
}

struct sdl_window *sdl_window_create(struct machine *m, struct display *display,
                                     bool integer_scaling, GError **error)
{
    if (SDL_InitSubSystem(SDL_INIT_VIDEO) != 0) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "--display sdl: %s", SDL_GetError());
        return NULL;
    }
    struct sdl_window *sdl = g_new0(struct sdl_window, 1);
    sdl->machine = m;
    sdl->display = display;
    sdl->integer_scaling = integer_scaling;
    g_mutex_init(&sdl->lock);
    struct framebuffer *fb = display->fb;
    sdl->window = SDL_CreateWindow(SDL_TITLE, SDL_WINDOWPOS_UNDEFINED, SDL_WINDOWPOS_UNDEFINED,
                                   (int)fb->width, (int)fb->height,
                                   SDL_WINDOW_RESIZABLE | SDL_WINDOW_ALLOW_HIGHDPI);
    if (sdl->window)
        sdl->renderer = SDL_CreateRenderer(sdl->window, -1, 0);
    if (!sdl->window || !sdl->renderer) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "--display sdl: %s", SDL_GetError());
        sdl_window_destroy(sdl);
        return NULL;
    }
    SDL_RenderSetIntegerScale(sdl->renderer, integer_scaling ? SDL_TRUE : SDL_FALSE);
    sdl->dirty = true;
    sdl->dirty_x1 = fb->width;
    sdl->dirty_y1 = fb->height;
    display_add_listener(display, sdl_frame, sdl);
    /* About 120 polls a second: input stays responsive and no frame of a
     * 60 Hz guest waits long. */
    sdl->poll_source = g_timeout_add(8, poll_cb, sdl);
    return sdl;
}

void sdl_window_destroy(struct sdl_window *sdl)
{
    if (!sdl)
        return;
    if (sdl->poll_source)
        g_source_remove(sdl->poll_source);
    display_remove_listener(sdl->display, sdl_frame, sdl);
    if (sdl->texture)
        SDL_DestroyTexture(sdl->texture);
    if (sdl->renderer)
        SDL_DestroyRenderer(sdl->renderer);
    if (sdl->window)
        SDL_DestroyWindow(sdl->window);
    SDL_QuitSubSystem(SDL_INIT_VIDEO);
    g_mutex_clear(&sdl->lock);
    g_free(sdl);
}
