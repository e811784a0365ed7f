/* "Connect to Remote VNC": address, port and password of a VNC server. */
#pragma once

#include "viv-application.h"

G_BEGIN_DECLS

#define VIV_TYPE_VNC_DIALOG (viv_vnc_dialog_get_type())
G_DECLARE_FINAL_TYPE(VivVncDialog, viv_vnc_dialog, VIV, VNC_DIALOG, GtkDialog)

GtkWidget *viv_vnc_dialog_new(VivApplication *app, GtkWindow *parent);

G_END_DECLS
