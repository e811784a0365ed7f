/* The VM window's snapshot list: take a snapshot, revert to one, delete one. */
#pragma once

#include "viv-engine.h"

#include <gtk/gtk.h>

G_BEGIN_DECLS

#define VIV_TYPE_SNAPSHOTS_POPOVER (viv_snapshots_popover_get_type())
G_DECLARE_FINAL_TYPE(VivSnapshotsPopover, viv_snapshots_popover, VIV, SNAPSHOTS_POPOVER, GtkPopover)

GtkWidget *viv_snapshots_popover_new(void);

/* The engine whose snapshots are shown; NULL while none runs. */
void viv_snapshots_popover_set_engine(VivSnapshotsPopover *self, VivEngine *engine);

G_END_DECLS
