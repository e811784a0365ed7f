/* A remote VNC server's screen and input, as a VivDisplaySource (libvncclient). */
#pragma once

#include "viv-display-source.h"

#include <gio/gio.h>

G_BEGIN_DECLS

#define VIV_TYPE_VNC_SOURCE (viv_vnc_source_get_type())
G_DECLARE_FINAL_TYPE(VivVncSource, viv_vnc_source, VIV, VNC_SOURCE, GObject)

#define VIV_VNC_ERROR (viv_vnc_error_quark())
GQuark viv_vnc_error_quark(void);

typedef enum {
    VIV_VNC_ERROR_CONNECT,        /* the server could not be reached or spoke no RFB */
    VIV_VNC_ERROR_AUTHENTICATION, /* wrong or missing password */
} VivVncError;

/* Connects in a worker thread (the RFB handshake blocks) and completes in the
 * main context. @password may be NULL or empty when the server asks for none. */
void viv_vnc_source_connect_async(const char *host, int port, const char *password,
                                  GCancellable *cancellable, GAsyncReadyCallback callback,
                                  gpointer user_data);
VivVncSource *viv_vnc_source_connect_finish(GAsyncResult *result, GError **error);

/* "host:port", for window titles. */
const char *viv_vnc_source_get_address(VivVncSource *self);
/* The desktop name the server announced. */
const char *viv_vnc_source_get_desktop_name(VivVncSource *self);

G_END_DECLS
