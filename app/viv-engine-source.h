/* The screen and input of a running engine, as a VivDisplaySource. */
#pragma once

#include "viv-display-source.h"
#include "viv-engine.h"

G_BEGIN_DECLS

#define VIV_TYPE_ENGINE_SOURCE (viv_engine_source_get_type())
G_DECLARE_FINAL_TYPE(VivEngineSource, viv_engine_source, VIV, ENGINE_SOURCE, GObject)

/* @engine must be ready. */
VivEngineSource *viv_engine_source_new(VivEngine *engine);

/* Checks a framebuffer description from GetFramebuffer against the contract and
 * the memfd's real size: TRUE if it can be mapped and drawn. Exposed for tests. */
gboolean viv_engine_source_framebuffer_valid(int fd, guint width, guint height, guint stride,
                                             guint format, GError **error);

G_END_DECLS
