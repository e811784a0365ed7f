/* libFuzzer target: the snapshot loader, fed arbitrary files. It must refuse
 * what is not a valid snapshot for this machine without crashing, reading
 * out of bounds or changing the machine. */
#include <glib.h>
#include <glib/gstdio.h>
#include <string.h>

#include "machine.h"
#include "snapshot.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct machine *machine;
static struct machine_config config;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    gchar *dir = g_dir_make_tmp("vivarium-fuzz-XXXXXX", NULL);
    gchar *bios = g_build_filename(dir, "bios.bin", NULL);
    gchar rom[4096];
    memset(rom, 0xf4, sizeof(rom));
    g_file_set_contents(bios, rom, sizeof(rom), NULL);
    config = (struct machine_config){.ram_size = 1 << 20, .accel = "interp", .bios_path = bios};
    machine = machine_create(&config, NULL);
    /* run-fuzzers.sh asks for a valid snapshot of this machine as the seed. */
    const char *seed = g_getenv("VIVARIUM_FUZZ_WRITE_SEED");
    if (machine && seed)
        snapshot_save(machine, seed, NULL);
    g_unlink(bios);
    g_rmdir(dir);
    g_free(dir);
    return machine ? 0 : 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    GError *error = NULL;
    if (!snapshot_load_buffer(machine, data, size, &error))
        g_error_free(error);
    return 0;
}
