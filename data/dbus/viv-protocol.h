/* Constants of the app <-> engine D-Bus contract (org.vivarium.Engine.xml).
 * Both vivarium and vivarium-engine include this; the interfaces themselves are
 * generated from the XML by gdbus-codegen into viv-dbus-generated.h. */
#pragma once

#include <gio/gio.h>

#define VIV_DBUS_OBJECT_PATH "/org/vivarium/Engine"

/* The engine's command-line option that carries the connection's file descriptor. */
#define VIV_DBUS_FD_OPTION "--dbus-fd"

#define VIV_MACHINE_STATE_RUNNING "running"
#define VIV_MACHINE_STATE_PAUSED  "paused"
#define VIV_MACHINE_STATE_STOPPED "stopped"

/* DRM_FORMAT_XRGB8888: little-endian 32-bit 0xXXRRGGBB, the only framebuffer
 * format in use (Cairo's CAIRO_FORMAT_RGB24 on every little-endian host). */
#define VIV_FORMAT_XRGB8888 0x34325258u

#define VIV_FRAMEBUFFER_MAX_SIDE 16384u
#define VIV_INVALIDATE_MAX_RECTS 64
#define VIV_POINTER_MAX_MOTION   4096
#define VIV_WHEEL_MAX_DELTA      127
#define VIV_SNAPSHOT_NAME_MAX    64

/* qnum key codes: set-1 make codes, 0xe0-prefixed keys as 0x80 | code. */
#define VIV_QNUM_MAX   0xffu
#define VIV_QNUM_PAUSE 0xc6u

typedef enum {
    VIV_DBUS_ERROR_INVALID_ARGUMENT,
    VIV_DBUS_ERROR_INVALID_STATE,
    VIV_DBUS_ERROR_NOT_FOUND,
    VIV_DBUS_ERROR_NOT_SUPPORTED,
    VIV_DBUS_ERROR_FAILED,
} VivDbusError;

/* GError domain whose codes travel as the D-Bus error names
 * org.vivarium.Error.InvalidArgument and so on; registered with GDBus on first use,
 * so g_dbus_method_invocation_return_gerror() and the caller's GError agree. */
#define VIV_DBUS_ERROR (viv_dbus_error_quark())
GQuark viv_dbus_error_quark(void);

/* True when @drive is one of the removable drive names the contract knows. */
gboolean viv_dbus_drive_name_valid(const char *drive);

/* True when @name is an acceptable snapshot name (see org.vivarium.Snapshots). */
gboolean viv_dbus_snapshot_name_valid(const char *name);
