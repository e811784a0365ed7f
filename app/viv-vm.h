/* One virtual machine of the library: its settings (one GKeyFile) and, while it
 * runs, its engine. */
#pragma once

#include "viv-display-source.h"
#include "viv-engine.h"

#include <gdk-pixbuf/gdk-pixbuf.h>

G_BEGIN_DECLS

typedef enum {
    VIV_VM_STATE_STOPPED,
    VIV_VM_STATE_STARTING, /* engine spawned, not yet running */
    VIV_VM_STATE_RUNNING,
    VIV_VM_STATE_PAUSED,
    VIV_VM_STATE_STOPPING,
    VIV_VM_STATE_FAILED, /* the engine died or would not start; see error-message */
} VivVmState;

#define VIV_TYPE_VM (viv_vm_get_type())
G_DECLARE_FINAL_TYPE(VivVm, viv_vm, VIV, VM, GObject)

/* Reads a VM from its key file. */
VivVm *viv_vm_load(const char *path, GError **error);
/* A new VM to be written at @path. */
VivVm *viv_vm_new(const char *path, const char *name);
gboolean viv_vm_save(VivVm *self, GError **error);

const char *viv_vm_get_path(VivVm *self);
/* The key file's base name without ".vm": stable, used for cache file names. */
const char *viv_vm_get_id(VivVm *self);

const char *viv_vm_get_name(VivVm *self);
void viv_vm_set_name(VivVm *self, const char *name);
int viv_vm_get_memory(VivVm *self); /* MiB */
void viv_vm_set_memory(VivVm *self, int memory_mib);
/* "auto", "kvm", "dbt" or "interp". */
const char *viv_vm_get_backend(VivVm *self);
void viv_vm_set_backend(VivVm *self, const char *backend);
/* Drive letters in boot order, as QEMU: "c" hard disk, "d" CD, "a" floppy. */
const char *viv_vm_get_boot_order(VivVm *self);
void viv_vm_set_boot_order(VivVm *self, const char *boot_order);
gboolean viv_vm_get_sound(VivVm *self);
void viv_vm_set_sound(VivVm *self, gboolean sound);
/* "fit", "integer" or "none". */
const char *viv_vm_get_scaling(VivVm *self);
void viv_vm_set_scaling(VivVm *self, const char *scaling);
/* Image paths; NULL when the drive is empty or absent. */
const char *viv_vm_get_hard_disk(VivVm *self);
void viv_vm_set_hard_disk(VivVm *self, const char *path);
const char *viv_vm_get_cdrom(VivVm *self);
void viv_vm_set_cdrom(VivVm *self, const char *path);
const char *viv_vm_get_floppy(VivVm *self);
void viv_vm_set_floppy(VivVm *self, const char *path);

VivVmState viv_vm_get_state(VivVm *self);
/* A sentence for a person, e.g. "Running" or "Paused". */
const char *viv_vm_describe_state(VivVm *self);
/* Why the VM failed; NULL unless the state is VIV_VM_STATE_FAILED. */
const char *viv_vm_get_error_message(VivVm *self);
GdkPixbuf *viv_vm_get_thumbnail(VivVm *self);

/* Where the engine keeps this VM's snapshots: $XDG_DATA_HOME/vivarium/snapshots/ID
 * (by id, not name, since names change and may repeat). */
char *viv_vm_snapshot_dir(VivVm *self);

/* The engine's command line after --dbus-fd, for this VM's settings. */
GStrv viv_vm_build_engine_options(VivVm *self);

/* Spawns the engine and powers the machine on once connected. */
gboolean viv_vm_start(VivVm *self, GError **error);
/* Powers off and quits the engine. */
void viv_vm_stop(VivVm *self);
/* The running engine and its screen; NULL when not running. */
VivEngine *viv_vm_get_engine(VivVm *self);
VivDisplaySource *viv_vm_get_display_source(VivVm *self);

G_END_DECLS
