/* A small VNC server (libvncserver) for the app's remote-viewing tests: it shows
 * a 320x200 picture of four coloured quadrants (red, green, blue, white, left to
 * right and top to bottom) and appends every key and pointer event it receives
 * to a log file, one a line:
 *   key down 0x61 / key up 0x61        (X11 keysyms)
 *   pointer 160 100 1                  (x, y, RFB button mask)
 *
 * Usage: vnc-test-server PORT LOGFILE [PASSWORD] */
#include <rfb/rfb.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#define WIDTH  320
#define HEIGHT 200

static FILE *event_log;

static void log_key(rfbBool down, rfbKeySym keysym, rfbClientPtr client)
{
    fprintf(event_log, "key %s 0x%x\n", down ? "down" : "up", (unsigned)keysym);
    fflush(event_log);
}

static void log_pointer(int mask, int x, int y, rfbClientPtr client)
{
    fprintf(event_log, "pointer %d %d %d\n", x, y, mask);
    fflush(event_log);
    rfbDefaultPtrAddEvent(mask, x, y, client);
}

static void draw_quadrants(unsigned char *pixels)
{
    /* RGBX bytes, libvncserver's default 32-bit format. */
    static const unsigned char colours[4][3] = {
        {255, 0, 0}, {0, 255, 0}, {0, 0, 255}, {255, 255, 255}};

    for (int y = 0; y < HEIGHT; y++) {
        for (int x = 0; x < WIDTH; x++) {
            const unsigned char *colour = colours[(y >= HEIGHT / 2) * 2 + (x >= WIDTH / 2)];
            unsigned char *pixel = pixels + (y * WIDTH + x) * 4;
            pixel[0] = colour[0];
            pixel[1] = colour[1];
            pixel[2] = colour[2];
            pixel[3] = 0;
        }
    }
}

int main(int argc, char **argv)
{
    static char *passwords[2];
    rfbScreenInfoPtr screen;

    if (argc < 3) {
        fprintf(stderr, "usage: %s PORT LOGFILE [PASSWORD]\n", argv[0]);
        return 2;
    }
    event_log = fopen(argv[2], "a");
    if (event_log == NULL) {
        perror(argv[2]);
        return 1;
    }
    screen = rfbGetScreen(NULL, NULL, WIDTH, HEIGHT, 8, 3, 4);
    screen->frameBuffer = calloc(WIDTH * HEIGHT, 4);
    screen->desktopName = "Vivarium VNC test";
    screen->port = atoi(argv[1]);
    screen->ipv6port = 0;
    screen->listenInterface = htonl(INADDR_LOOPBACK);
    screen->kbdAddEvent = log_key;
    screen->ptrAddEvent = log_pointer;
    screen->alwaysShared = TRUE;
    if (argc > 3) {
        passwords[0] = argv[3];
        screen->authPasswdData = passwords;
        screen->passwordCheck = rfbCheckPasswordByList;
    }
    draw_quadrants((unsigned char *)screen->frameBuffer);
    rfbInitServer(screen);
    fprintf(event_log, "listening %d\n", screen->port);
    fflush(event_log);
    while (rfbIsActive(screen))
        rfbProcessEvents(screen, 50000);
    return 0;
}
