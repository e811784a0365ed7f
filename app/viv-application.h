#pragma once

#include "viv-display-source.h"
#include "viv-library.h"

#include <gtk/gtk.h>

G_BEGIN_DECLS

#define VIV_APPLICATION_ID "org.vivarium.Vivarium"

#define VIV_TYPE_APPLICATION (viv_application_get_type())
G_DECLARE_FINAL_TYPE(VivApplication, viv_application, VIV, APPLICATION, GtkApplication)

VivApplication *viv_application_new(void);

VivLibrary *viv_application_get_library(VivApplication *self);
GSettings *viv_application_get_settings(VivApplication *self);

/* Starts @vm if it is not running and shows its window. */
void viv_application_start_vm(VivApplication *self, VivVm *vm);
/* Shows @vm's window if it has one. */
void viv_application_show_vm(VivApplication *self, VivVm *vm);
/* Asks whether to delete @vm (and its disk), from @parent. */
void viv_application_confirm_delete(VivApplication *self, VivVm *vm, GtkWindow *parent);
void viv_application_edit_vm(VivApplication *self, VivVm *vm, GtkWindow *parent);

/* Reports a failure as a modal message on @parent. */
void viv_application_show_error(GtkWindow *parent, const char *primary, const char *secondary);

G_END_DECLS
