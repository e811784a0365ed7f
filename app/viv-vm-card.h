/* A VM in the library window: thumbnail, name, state, and its buttons. */
#pragma once

#include "viv-application.h"

G_BEGIN_DECLS

#define VIV_TYPE_VM_CARD (viv_vm_card_get_type())
G_DECLARE_FINAL_TYPE(VivVmCard, viv_vm_card, VIV, VM_CARD, GtkBox)

GtkWidget *viv_vm_card_new(VivApplication *app, VivVm *vm);
VivVm *viv_vm_card_get_vm(VivVmCard *self);

G_END_DECLS
