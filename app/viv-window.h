/* The library window: one card per VM, search, and the way to a new VM. */
#pragma once

#include "viv-application.h"

G_BEGIN_DECLS

#define VIV_TYPE_WINDOW (viv_window_get_type())
G_DECLARE_FINAL_TYPE(VivWindow, viv_window, VIV, WINDOW, GtkApplicationWindow)

GtkWidget *viv_window_new(VivApplication *app);

G_END_DECLS
