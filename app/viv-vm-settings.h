/* The settings of one VM: memory, drives, boot order, CPU backend, display and
 * sound. Changes apply when the machine next starts. */
#pragma once

#include "viv-vm.h"

#include <gtk/gtk.h>

G_BEGIN_DECLS

#define VIV_TYPE_VM_SETTINGS (viv_vm_settings_get_type())
G_DECLARE_FINAL_TYPE(VivVmSettings, viv_vm_settings, VIV, VM_SETTINGS, GtkDialog)

GtkWidget *viv_vm_settings_new(VivVm *vm, GtkWindow *parent);

G_END_DECLS
