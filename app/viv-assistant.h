/* The assistant that creates a VM: from a CD image, a floppy image, an existing
 * disk image, or empty. */
#pragma once

#include "viv-application.h"

G_BEGIN_DECLS

#define VIV_TYPE_ASSISTANT (viv_assistant_get_type())
G_DECLARE_FINAL_TYPE(VivAssistant, viv_assistant, VIV, ASSISTANT, GtkAssistant)

GtkWidget *viv_assistant_new(VivApplication *app, GtkWindow *parent);

G_END_DECLS
