/* vivarium: the desktop app. */
#include "config.h"

#include "viv-application.h"

#include <glib/gi18n.h>
#include <locale.h>

int main(int argc, char **argv)
{
    const char *localedir = g_getenv("VIVARIUM_LOCALEDIR");
    g_autoptr(VivApplication) app = NULL;

    /* VIVARIUM_LOCALEDIR lets tests and screenshots use the translations in the
     * build tree before they are installed. */
    setlocale(LC_ALL, "");
    bindtextdomain(GETTEXT_PACKAGE, localedir != NULL ? localedir : LOCALEDIR);
    bind_textdomain_codeset(GETTEXT_PACKAGE, "UTF-8");
    textdomain(GETTEXT_PACKAGE);

    app = viv_application_new();
    return g_application_run(G_APPLICATION(app), argc, argv);
}
