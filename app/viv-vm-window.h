/* The window of a running VM (or of a remote VNC screen): the display, the
 * machine's controls, the send-key and media menus. */
#pragma once

#include "viv-application.h"
#include "viv-vnc-source.h"

G_BEGIN_DECLS

#define VIV_TYPE_VM_WINDOW (viv_vm_window_get_type())
G_DECLARE_FINAL_TYPE(VivVmWindow, viv_vm_window, VIV, VM_WINDOW, GtkApplicationWindow)

VivVmWindow *viv_vm_window_new(VivApplication *app, VivVm *vm);
VivVmWindow *viv_vm_window_new_remote(VivApplication *app, VivVncSource *source);

/* NULL for a remote window. */
VivVm *viv_vm_window_get_vm(VivVmWindow *self);

G_END_DECLS
