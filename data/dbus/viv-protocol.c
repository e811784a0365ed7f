/* Helpers shared by both ends of the app <-> engine D-Bus contract. */
#include "viv-protocol.h"

#include <string.h>

static const GDBusErrorEntry viv_dbus_error_entries[] = {
    {VIV_DBUS_ERROR_INVALID_ARGUMENT, "org.vivarium.Error.InvalidArgument"},
    {VIV_DBUS_ERROR_INVALID_STATE, "org.vivarium.Error.InvalidState"},
    {VIV_DBUS_ERROR_NOT_FOUND, "org.vivarium.Error.NotFound"},
    {VIV_DBUS_ERROR_NOT_SUPPORTED, "org.vivarium.Error.NotSupported"},
    {VIV_DBUS_ERROR_FAILED, "org.vivarium.Error.Failed"},
};

GQuark viv_dbus_error_quark(void)
{
    static gsize quark;

    g_dbus_error_register_error_domain("viv-dbus-error-quark", &quark, viv_dbus_error_entries,
                                       G_N_ELEMENTS(viv_dbus_error_entries));
    return (GQuark)quark;
}

gboolean viv_dbus_drive_name_valid(const char *drive)
{
    return drive != NULL &&
           (strcmp(drive, "fda") == 0 || strcmp(drive, "fdb") == 0 || strcmp(drive, "cdrom") == 0);
}

gboolean viv_dbus_snapshot_name_valid(const char *name)
{
    size_t length = name != NULL ? strlen(name) : 0;

    if (length == 0 || length > VIV_SNAPSHOT_NAME_MAX || name[0] == '.')
        return FALSE;
    for (size_t i = 0; i < length; i++) {
        char c = name[i];
        if (!g_ascii_isalnum(c) && c != ' ' && c != '-' && c != '_' && c != '.')
            return FALSE;
    }
    return TRUE;
}
