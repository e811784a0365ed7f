/* A VM's settings live in one key file under $XDG_CONFIG_HOME/vivarium/:
 *
 *   [Machine]
 *   Name=FreeDOS
 *   Memory=64            (MiB)
 *   Backend=auto         (auto, kvm, dbt, interp)
 *   BootOrder=dca        (c hard disk, d CD, a floppy; QEMU's letters)
 *   Sound=true
 *   Scaling=integer      (fit, integer, none)
 *   [Drives]
 *   HardDisk=/home/.../vivarium/images/freedos.img
 *   CDROM=/home/.../FD13LIVE.iso
 *   Floppy=
 *
 * Keys this version does not know are kept, so that a newer Vivarium's settings
 * survive a round trip through an older one. */
#include "config.h"

#include "viv-vm.h"

#include "viv-engine-source.h"
#include "viv-protocol.h"

#include <gdk/gdk.h>
#include <glib/gi18n.h>

#define GROUP_MACHINE "Machine"
#define GROUP_DRIVES  "Drives"

#define THUMBNAIL_WIDTH      256
#define THUMBNAIL_HEIGHT     192
#define THUMBNAIL_INTERVAL_S 2

struct _VivVm {
    GObject parent_instance;

    char *path;
    char *id;
    GKeyFile *key_file;

    VivVmState state;
    char *error_message;
    GdkPixbuf *thumbnail;

    VivEngine *engine;
    VivEngineSource *source;
    guint thumbnail_timer;
};

G_DEFINE_FINAL_TYPE(VivVm, viv_vm, G_TYPE_OBJECT)

enum { PROP_0, PROP_NAME, PROP_STATE, PROP_THUMBNAIL, N_PROPS };
static GParamSpec *properties[N_PROPS];

enum { SIGNAL_CHANGED, SIGNAL_ENGINE_READY, SIGNAL_ENGINE_ERROR, N_SIGNALS };
static guint signals[N_SIGNALS];

static char *viv_vm_thumbnail_path(VivVm *self)
{
    g_autofree char *name = g_strconcat(self->id, ".png", NULL);

    return g_build_filename(g_get_user_cache_dir(), "vivarium", "thumbnails", name, NULL);
}

char *viv_vm_snapshot_dir(VivVm *self)
{
    return g_build_filename(g_get_user_data_dir(), "vivarium", "snapshots", self->id, NULL);
}

static char *viv_vm_get_string(VivVm *self, const char *group, const char *key,
                               const char *fallback)
{
    char *value = g_key_file_get_string(self->key_file, group, key, NULL);

    if (value == NULL)
        return g_strdup(fallback);
    return value;
}

/* Strings are cached on the object so that getters can return const pointers;
 * the key file stays the single source of truth. */
static const char *viv_vm_lookup(VivVm *self, const char *group, const char *key,
                                 const char *fallback)
{
    g_autofree char *quark_key = g_strconcat(group, "/", key, NULL);
    char *value = viv_vm_get_string(self, group, key, fallback);

    const char *cached = g_object_get_data(G_OBJECT(self), quark_key);

    if (value != NULL && *value == '\0')
        g_clear_pointer(&value, g_free);
    /* Returned pointers stay valid until the value changes. */
    if (g_strcmp0(cached, value) == 0) {
        g_free(value);
        return cached;
    }
    g_object_set_data_full(G_OBJECT(self), g_intern_string(quark_key), value, g_free);
    return value;
}

static void viv_vm_set_string(VivVm *self, const char *group, const char *key, const char *value)
{
    if (value == NULL || *value == '\0')
        g_key_file_remove_key(self->key_file, group, key, NULL);
    else
        g_key_file_set_string(self->key_file, group, key, value);
    g_signal_emit(self, signals[SIGNAL_CHANGED], 0);
}

static void viv_vm_init_paths(VivVm *self, const char *path)
{
    g_autofree char *base = g_path_get_basename(path);

    self->path = g_strdup(path);
    if (g_str_has_suffix(base, ".vm"))
        base[strlen(base) - 3] = '\0';
    self->id = g_steal_pointer(&base);
}

static void viv_vm_load_thumbnail(VivVm *self)
{
    g_autofree char *path = viv_vm_thumbnail_path(self);

    if (g_file_test(path, G_FILE_TEST_IS_REGULAR))
        self->thumbnail = gdk_pixbuf_new_from_file(path, NULL);
}

VivVm *viv_vm_load(const char *path, GError **error)
{
    g_autoptr(VivVm) self = g_object_new(VIV_TYPE_VM, NULL);

    if (!g_key_file_load_from_file(self->key_file, path,
                                   G_KEY_FILE_KEEP_COMMENTS | G_KEY_FILE_KEEP_TRANSLATIONS, error))
        return NULL;
    if (!g_key_file_has_key(self->key_file, GROUP_MACHINE, "Name", NULL)) {
        g_set_error(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_KEY_NOT_FOUND,
                    _("%s does not describe a virtual machine (it has no name)."), path);
        return NULL;
    }
    viv_vm_init_paths(self, path);
    viv_vm_load_thumbnail(self);
    return g_steal_pointer(&self);
}

VivVm *viv_vm_new(const char *path, const char *name)
{
    VivVm *self = g_object_new(VIV_TYPE_VM, NULL);

    viv_vm_init_paths(self, path);
    g_key_file_set_string(self->key_file, GROUP_MACHINE, "Name", name);
    return self;
}

gboolean viv_vm_save(VivVm *self, GError **error)
{
    g_autofree char *directory = g_path_get_dirname(self->path);

    if (g_mkdir_with_parents(directory, 0700) < 0) {
        g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errno),
                    _("Cannot create the folder %s: %s"), directory, g_strerror(errno));
        return FALSE;
    }
    return g_key_file_save_to_file(self->key_file, self->path, error);
}

const char *viv_vm_get_path(VivVm *self)
{
    return self->path;
}

const char *viv_vm_get_id(VivVm *self)
{
    return self->id;
}

const char *viv_vm_get_name(VivVm *self)
{
    return viv_vm_lookup(self, GROUP_MACHINE, "Name", "");
}

void viv_vm_set_name(VivVm *self, const char *name)
{
    viv_vm_set_string(self, GROUP_MACHINE, "Name", name);
    g_object_notify_by_pspec(G_OBJECT(self), properties[PROP_NAME]);
}

int viv_vm_get_memory(VivVm *self)
{
    g_autoptr(GError) error = NULL;
    int memory = g_key_file_get_integer(self->key_file, GROUP_MACHINE, "Memory", &error);

    return error != NULL || memory <= 0 ? 128 : memory;
}

void viv_vm_set_memory(VivVm *self, int memory_mib)
{
    g_key_file_set_integer(self->key_file, GROUP_MACHINE, "Memory", memory_mib);
    g_signal_emit(self, signals[SIGNAL_CHANGED], 0);
}

const char *viv_vm_get_backend(VivVm *self)
{
    return viv_vm_lookup(self, GROUP_MACHINE, "Backend", "auto");
}

void viv_vm_set_backend(VivVm *self, const char *backend)
{
    viv_vm_set_string(self, GROUP_MACHINE, "Backend", backend);
}

const char *viv_vm_get_boot_order(VivVm *self)
{
    return viv_vm_lookup(self, GROUP_MACHINE, "BootOrder", "cda");
}

void viv_vm_set_boot_order(VivVm *self, const char *boot_order)
{
    viv_vm_set_string(self, GROUP_MACHINE, "BootOrder", boot_order);
}

gboolean viv_vm_get_sound(VivVm *self)
{
    g_autoptr(GError) error = NULL;
    gboolean sound = g_key_file_get_boolean(self->key_file, GROUP_MACHINE, "Sound", &error);

    return error != NULL ? TRUE : sound;
}

void viv_vm_set_sound(VivVm *self, gboolean sound)
{
    g_key_file_set_boolean(self->key_file, GROUP_MACHINE, "Sound", sound);
    g_signal_emit(self, signals[SIGNAL_CHANGED], 0);
}

const char *viv_vm_get_scaling(VivVm *self)
{
    return viv_vm_lookup(self, GROUP_MACHINE, "Scaling", "fit");
}

void viv_vm_set_scaling(VivVm *self, const char *scaling)
{
    viv_vm_set_string(self, GROUP_MACHINE, "Scaling", scaling);
}

const char *viv_vm_get_hard_disk(VivVm *self)
{
    return viv_vm_lookup(self, GROUP_DRIVES, "HardDisk", NULL);
}

void viv_vm_set_hard_disk(VivVm *self, const char *path)
{
    viv_vm_set_string(self, GROUP_DRIVES, "HardDisk", path);
}

const char *viv_vm_get_cdrom(VivVm *self)
{
    return viv_vm_lookup(self, GROUP_DRIVES, "CDROM", NULL);
}

void viv_vm_set_cdrom(VivVm *self, const char *path)
{
    viv_vm_set_string(self, GROUP_DRIVES, "CDROM", path);
}

const char *viv_vm_get_floppy(VivVm *self)
{
    return viv_vm_lookup(self, GROUP_DRIVES, "Floppy", NULL);
}

void viv_vm_set_floppy(VivVm *self, const char *path)
{
    viv_vm_set_string(self, GROUP_DRIVES, "Floppy", path);
}

VivVmState viv_vm_get_state(VivVm *self)
{
    return self->state;
}

const char *viv_vm_describe_state(VivVm *self)
{
    switch (self->state) {
    case VIV_VM_STATE_STARTING:
        return _("Starting…");
    case VIV_VM_STATE_RUNNING:
        return _("Running");
    case VIV_VM_STATE_PAUSED:
        return _("Paused");
    case VIV_VM_STATE_STOPPING:
        return _("Stopping…");
    case VIV_VM_STATE_FAILED:
        return _("Failed");
    case VIV_VM_STATE_STOPPED:
    default:
        return _("Powered off");
    }
}

const char *viv_vm_get_error_message(VivVm *self)
{
    return self->state == VIV_VM_STATE_FAILED ? self->error_message : NULL;
}

GdkPixbuf *viv_vm_get_thumbnail(VivVm *self)
{
    return self->thumbnail;
}

static void viv_vm_set_state(VivVm *self, VivVmState state)
{
    if (self->state == state)
        return;
    self->state = state;
    g_object_notify_by_pspec(G_OBJECT(self), properties[PROP_STATE]);
}

GStrv viv_vm_build_engine_options(VivVm *self)
{
    g_autoptr(GStrvBuilder) options = g_strv_builder_new();
    g_autofree char *memory = g_strdup_printf("%d", viv_vm_get_memory(self));
    g_autofree char *snapshot_dir = viv_vm_snapshot_dir(self);

    g_strv_builder_add_many(options, "--name", viv_vm_get_name(self), "--memory", memory, "--accel",
                            viv_vm_get_backend(self), "--boot", viv_vm_get_boot_order(self), NULL);
    if (viv_vm_get_hard_disk(self) != NULL)
        g_strv_builder_add_many(options, "--hda", viv_vm_get_hard_disk(self), NULL);
    if (viv_vm_get_cdrom(self) != NULL)
        g_strv_builder_add_many(options, "--cdrom", viv_vm_get_cdrom(self), NULL);
    if (viv_vm_get_floppy(self) != NULL)
        g_strv_builder_add_many(options, "--fda", viv_vm_get_floppy(self), NULL);
    if (!viv_vm_get_sound(self))
        g_strv_builder_add(options, "--no-sound");
    g_strv_builder_add_many(options, "--snapshot-dir", snapshot_dir, NULL);
    return g_strv_builder_end(options);
}

static void viv_vm_update_thumbnail(VivVm *self)
{
    cairo_surface_t *surface =
        self->source ? viv_display_source_get_surface(VIV_DISPLAY_SOURCE(self->source)) : NULL;
    int width, height;
    double scale;

    if (surface == NULL)
        return;
    width = cairo_image_surface_get_width(surface);
    height = cairo_image_surface_get_height(surface);
    scale = MIN((double)THUMBNAIL_WIDTH / width, (double)THUMBNAIL_HEIGHT / height);
    g_autoptr(GdkPixbuf) full = gdk_pixbuf_get_from_surface(surface, 0, 0, width, height);
    if (full == NULL)
        return;
    g_clear_object(&self->thumbnail);
    self->thumbnail = gdk_pixbuf_scale_simple(full, MAX(1, (int)(width * scale)),
                                              MAX(1, (int)(height * scale)), GDK_INTERP_BILINEAR);
    g_object_notify_by_pspec(G_OBJECT(self), properties[PROP_THUMBNAIL]);
}

static void viv_vm_save_thumbnail(VivVm *self)
{
    g_autofree char *path = viv_vm_thumbnail_path(self);
    g_autofree char *directory = g_path_get_dirname(path);

    if (self->thumbnail == NULL)
        return;
    g_mkdir_with_parents(directory, 0700);
    if (!gdk_pixbuf_save(self->thumbnail, path, "png", NULL, NULL))
        g_debug("cannot save thumbnail %s", path);
}

static gboolean viv_vm_thumbnail_timer_cb(gpointer data)
{
    viv_vm_update_thumbnail(VIV_VM(data));
    return G_SOURCE_CONTINUE;
}

static void viv_vm_release_engine(VivVm *self)
{
    g_clear_handle_id(&self->thumbnail_timer, g_source_remove);
    if (self->engine != NULL)
        g_signal_handlers_disconnect_by_data(self->engine, self);
    g_clear_object(&self->source);
    g_clear_object(&self->engine);
}

static void viv_vm_engine_state_cb(VivEngine *engine, VivVm *self)
{
    const char *state = viv_engine_get_state(engine);

    if (self->state == VIV_VM_STATE_STOPPING || state == NULL)
        return;
    if (g_str_equal(state, VIV_MACHINE_STATE_RUNNING))
        viv_vm_set_state(self, VIV_VM_STATE_RUNNING);
    else if (g_str_equal(state, VIV_MACHINE_STATE_PAUSED))
        viv_vm_set_state(self, VIV_VM_STATE_PAUSED);
    else if (self->state != VIV_VM_STATE_STARTING) {
        /* The guest powered itself off: the engine has nothing left to do. */
        viv_vm_stop(self);
    }
}

static void viv_vm_engine_ready_cb(VivEngine *engine, VivVm *self)
{
    self->source = viv_engine_source_new(engine);
    self->thumbnail_timer =
        g_timeout_add_seconds(THUMBNAIL_INTERVAL_S, viv_vm_thumbnail_timer_cb, self);
    g_signal_emit(self, signals[SIGNAL_ENGINE_READY], 0);
    viv_engine_start(engine);
}

static void viv_vm_engine_error_cb(VivEngine *engine, const char *message, VivVm *self)
{
    g_signal_emit(self, signals[SIGNAL_ENGINE_ERROR], 0, message);
}

static void viv_vm_engine_exited_cb(VivEngine *engine, gboolean unexpected, const char *message,
                                    VivVm *self)
{
    viv_vm_update_thumbnail(self);
    viv_vm_save_thumbnail(self);
    viv_vm_release_engine(self);
    g_free(self->error_message);
    self->error_message = g_strdup(message);
    viv_vm_set_state(self, unexpected ? VIV_VM_STATE_FAILED : VIV_VM_STATE_STOPPED);
}

gboolean viv_vm_start(VivVm *self, GError **error)
{
    g_auto(GStrv) options = viv_vm_build_engine_options(self);
    g_autoptr(VivEngine) engine = viv_engine_new();

    if (self->engine != NULL)
        return TRUE;
    g_signal_connect(engine, "ready", G_CALLBACK(viv_vm_engine_ready_cb), self);
    g_signal_connect(engine, "state-changed", G_CALLBACK(viv_vm_engine_state_cb), self);
    g_signal_connect(engine, "error", G_CALLBACK(viv_vm_engine_error_cb), self);
    g_signal_connect(engine, "exited", G_CALLBACK(viv_vm_engine_exited_cb), self);
    if (!viv_engine_spawn(engine, (const char *const *)options, error)) {
        g_signal_handlers_disconnect_by_data(engine, self);
        g_free(self->error_message);
        self->error_message = g_strdup((*error)->message);
        viv_vm_set_state(self, VIV_VM_STATE_FAILED);
        return FALSE;
    }
    self->engine = g_steal_pointer(&engine);
    g_clear_pointer(&self->error_message, g_free);
    viv_vm_set_state(self, VIV_VM_STATE_STARTING);
    return TRUE;
}

void viv_vm_stop(VivVm *self)
{
    if (self->engine == NULL)
        return;
    viv_vm_set_state(self, VIV_VM_STATE_STOPPING);
    viv_engine_quit(self->engine);
}

VivEngine *viv_vm_get_engine(VivVm *self)
{
    return self->engine;
}

VivDisplaySource *viv_vm_get_display_source(VivVm *self)
{
    return self->source != NULL ? VIV_DISPLAY_SOURCE(self->source) : NULL;
}

static void viv_vm_get_property(GObject *object, guint prop_id, GValue *value, GParamSpec *pspec)
{
    VivVm *self = VIV_VM(object);

    switch (prop_id) {
    case PROP_NAME:
        g_value_set_string(value, viv_vm_get_name(self));
        break;
    case PROP_STATE:
        g_value_set_int(value, self->state);
        break;
    case PROP_THUMBNAIL:
        g_value_set_object(value, self->thumbnail);
        break;
    default:
        G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
    }
}

static void viv_vm_dispose(GObject *object)
{
    VivVm *self = VIV_VM(object);

    if (self->engine != NULL)
        viv_engine_quit(self->engine);
    viv_vm_release_engine(self);
    g_clear_object(&self->thumbnail);
    G_OBJECT_CLASS(viv_vm_parent_class)->dispose(object);
}

static void viv_vm_finalize(GObject *object)
{
    VivVm *self = VIV_VM(object);

    g_free(self->path);
    g_free(self->id);
    g_free(self->error_message);
    g_key_file_unref(self->key_file);
    G_OBJECT_CLASS(viv_vm_parent_class)->finalize(object);
}

static void viv_vm_class_init(VivVmClass *klass)
{
    GObjectClass *object_class = G_OBJECT_CLASS(klass);

    object_class->get_property = viv_vm_get_property;
    object_class->dispose = viv_vm_dispose;
    object_class->finalize = viv_vm_finalize;

    properties[PROP_NAME] =
        g_param_spec_string("name", NULL, NULL, NULL, G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);
    properties[PROP_STATE] =
        g_param_spec_int("state", NULL, NULL, VIV_VM_STATE_STOPPED, VIV_VM_STATE_FAILED,
                         VIV_VM_STATE_STOPPED, G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);
    properties[PROP_THUMBNAIL] = g_param_spec_object("thumbnail", NULL, NULL, GDK_TYPE_PIXBUF,
                                                     G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);
    g_object_class_install_properties(object_class, N_PROPS, properties);

    /* A setting changed (not yet saved). */
    signals[SIGNAL_CHANGED] = g_signal_new("changed", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST,
                                           0, NULL, NULL, NULL, G_TYPE_NONE, 0);
    /* The engine is connected; viv_vm_get_display_source() has a value. */
    signals[SIGNAL_ENGINE_READY] =
        g_signal_new("engine-ready", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL,
                     NULL, G_TYPE_NONE, 0);
    /* A command failed or the engine reported an error; the machine may run on. */
    signals[SIGNAL_ENGINE_ERROR] =
        g_signal_new("engine-error", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL,
                     NULL, G_TYPE_NONE, 1, G_TYPE_STRING);
}

static void viv_vm_init(VivVm *self)
{
    self->key_file = g_key_file_new();
}
