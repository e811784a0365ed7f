/* The library: every VM's key file under $XDG_CONFIG_HOME/vivarium/ and the disk
 * images Vivarium created under $XDG_DATA_HOME/vivarium/images/. */
#pragma once

#include "viv-vm.h"

#include <gio/gio.h>

G_BEGIN_DECLS

typedef enum {
    VIV_INSTALL_FROM_CDROM,      /* an ISO image: new disk, boot from CD */
    VIV_INSTALL_FROM_FLOPPY,     /* a floppy image: new disk, boot from floppy */
    VIV_INSTALL_FROM_DISK_IMAGE, /* an existing disk image, used in place */
    VIV_INSTALL_EMPTY,           /* just a new, empty disk */
} VivInstallSource;

#define VIV_TYPE_LIBRARY (viv_library_get_type())
G_DECLARE_FINAL_TYPE(VivLibrary, viv_library, VIV, LIBRARY, GObject)

VivLibrary *viv_library_new(void);

/* Reads every *.vm file; files that cannot be read are skipped with a warning. */
void viv_library_load(VivLibrary *self);

/* A GListModel of VivVm, sorted by name. */
GListModel *viv_library_get_model(VivLibrary *self);

char *viv_library_config_dir(void);
char *viv_library_images_dir(void);

/* Creates and saves a VM. @path is the image for @source (ignored for
 * VIV_INSTALL_EMPTY); @disk_size_gib is the size of the new disk image. */
VivVm *viv_library_create(VivLibrary *self, const char *name, VivInstallSource source,
                          const char *path, int memory_mib, int disk_size_gib, GError **error);

/* Stops @vm if it runs, deletes its key file and thumbnail, and its hard disk
 * image unless @keep_disk. */
gboolean viv_library_delete(VivLibrary *self, VivVm *vm, gboolean keep_disk, GError **error);

/* True when @vm's hard disk is an image Vivarium created (inside images_dir). */
gboolean viv_library_owns_disk(VivVm *vm);

/* The vivarium-img program that makes disk images: $VIVARIUM_IMG when set,
 * else the installed one, else the one in the build tree. */
const char *viv_library_disk_tool(void);

/* Creates a qcow2 image of @size_bytes at @path (which must not exist) by
 * running vivarium-img; the error carries the tool's own message. */
gboolean viv_library_create_disk_image(const char *path, guint64 size_bytes, GError **error);

G_END_DECLS
