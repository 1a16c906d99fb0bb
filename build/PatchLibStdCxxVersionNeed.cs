// Compiled twice on purpose: by MSBuild's RoslynCodeTaskFactory (build/LibStdCxxShim.targets) and
// by tests/QuantPeft.Build.Tests, which links this file so the task is tested as it runs in the build.
#nullable enable
using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text;
using Microsoft.Build.Framework;
using Microsoft.Build.Utilities;

namespace QuantPeft.Build
{
    /// <summary>
    /// MSBuild task: marks one ELF version requirement (by default <c>GLIBCXX_3.4.32</c>) as weak
    /// in the build-output copies of TorchSharp's native library, when the system libstdc++ does not
    /// define that version.
    /// </summary>
    /// <remarks>
    /// TorchSharp 0.107's <c>libLibTorchSharp.so</c> was linked against a libstdc++ (GCC 13) whose
    /// headers emit a reference to <c>std::ios_base_library_init</c>, a marker symbol that only carries
    /// the <c>GLIBCXX_3.4.32</c> version and is never called. Debian 12 and Ubuntu 22.04 ship 3.4.30,
    /// so the dynamic loader refuses the library. A version need flagged <c>VER_FLG_WEAK</c> is checked
    /// but not required by ld.so, which makes the library load on those systems. Only the copy in
    /// the output folder is changed, via a temporary file and a rename, so a hard-linked NuGet cache
    /// file is never touched; the original timestamp is kept so incremental copies stay skipped.
    /// </remarks>
    public sealed class PatchLibStdCxxVersionNeed : Microsoft.Build.Utilities.Task
    {
        /// <summary>Files to patch (each <c>libLibTorchSharp.so</c> in an output folder).</summary>
        [Required]
        public ITaskItem[] Libraries { get; set; } = Array.Empty<ITaskItem>();

        /// <summary>The version requirement to weaken.</summary>
        public string VersionName { get; set; } = "GLIBCXX_3.4.32";

        /// <summary>
        /// Path of the system libstdc++ to probe. Empty: the usual library folders are searched.
        /// </summary>
        public string SystemLibStdCxx { get; set; } = "";

        /// <inheritdoc />
        public override bool Execute()
        {
            string? system = string.IsNullOrEmpty(SystemLibStdCxx) ? ElfVersionNeeds.FindSystemLibStdCxx() : SystemLibStdCxx;
            if (system != null && File.Exists(system))
            {
                bool defines;
                try { defines = ElfVersionNeeds.DefinesVersion(File.ReadAllBytes(system), VersionName); }
                catch (ElfFormatException e) { Log.LogWarning($"libstdc++ shim: could not read '{system}' ({e.Message}); patching anyway."); defines = false; }
                if (defines)
                {
                    Log.LogMessage(MessageImportance.Low, $"libstdc++ shim: '{system}' defines {VersionName}; nothing to patch.");
                    return true;
                }
                Log.LogMessage(MessageImportance.Normal, $"libstdc++ shim: '{system}' lacks {VersionName}.");
            }
            else
            {
                Log.LogMessage(MessageImportance.Normal, $"libstdc++ shim: no system libstdc++.so.6 found; weakening {VersionName} anyway (harmless where it exists).");
            }

            foreach (ITaskItem item in Libraries)
            {
                string path = item.ItemSpec;
                try
                {
                    PatchOutcome outcome = ElfVersionNeeds.MarkWeak(path, VersionName);
                    Log.LogMessage(outcome == PatchOutcome.Patched ? MessageImportance.High : MessageImportance.Normal,
                        $"libstdc++ shim: {path}: {Describe(outcome)}");
                }
                catch (Exception e) when (e is ElfFormatException || e is IOException || e is UnauthorizedAccessException)
                {
                    Log.LogError($"libstdc++ shim: cannot patch '{path}': {e.Message}");
                }
            }
            return !Log.HasLoggedErrors;
        }

        private string Describe(PatchOutcome outcome) => outcome switch
        {
            PatchOutcome.Patched => $"marked the {VersionName} version need weak",
            PatchOutcome.AlreadyWeak => $"{VersionName} version need already weak",
            _ => $"no {VersionName} version need; left unchanged",
        };
    }

    /// <summary>What <see cref="ElfVersionNeeds.MarkWeak"/> did to a file.</summary>
    public enum PatchOutcome
    {
        /// <summary>The file does not require the version.</summary>
        NotRequired,
        /// <summary>The requirement was already weak; the file was not rewritten.</summary>
        AlreadyWeak,
        /// <summary>The requirement's flags now include <c>VER_FLG_WEAK</c>.</summary>
        Patched,
    }

    /// <summary>An ELF file this reader cannot interpret.</summary>
    public sealed class ElfFormatException : Exception
    {
        /// <summary>Creates the exception.</summary>
        public ElfFormatException(string message) : base(message) { }
    }

    /// <summary>One entry of an ELF <c>.gnu.version_r</c> section.</summary>
    /// <remarks>A plain struct, not a record: RoslynCodeTaskFactory compiles against netstandard.</remarks>
    public readonly struct VersionNeed
    {
        /// <summary>Creates an entry.</summary>
        public VersionNeed(string file, string name, ushort flags, long flagsOffset)
        {
            File = file;
            Name = name;
            Flags = flags;
            FlagsOffset = flagsOffset;
        }

        /// <summary>The library the version is needed from.</summary>
        public string File { get; }

        /// <summary>The version name.</summary>
        public string Name { get; }

        /// <summary>The <c>vna_flags</c> field.</summary>
        public ushort Flags { get; }

        /// <summary>File offset of <c>vna_flags</c>.</summary>
        public long FlagsOffset { get; }
    }

    /// <summary>Reads and edits ELF symbol-version requirements (little-endian ELF32/ELF64).</summary>
    public static class ElfVersionNeeds
    {
        /// <summary><c>VER_FLG_WEAK</c> from elf.h.</summary>
        public const ushort VerFlagWeak = 0x2;
        private const uint ShtGnuVerdef = 0x6ffffffd;
        private const uint ShtGnuVerneed = 0x6ffffffe;

        /// <summary>Lists the version requirements of an ELF image.</summary>
        /// <exception cref="ElfFormatException">The image is not a little-endian ELF or is truncated.</exception>
        public static IReadOnlyList<VersionNeed> Read(byte[] elf)
        {
            var result = new List<VersionNeed>();
            foreach (Section s in Sections(elf).Where(s => s.Type == ShtGnuVerneed))
            {
                Section strtab = StringTable(elf, s);
                long entry = s.Offset;
                for (int guard = 0; guard < 4096; guard++)
                {
                    Need(elf, entry, 16);
                    ushort count = U16(elf, entry + 2);
                    string file = CString(elf, strtab, U32(elf, entry + 4));
                    long aux = entry + U32(elf, entry + 8);
                    for (int i = 0; i < count; i++)
                    {
                        Need(elf, aux, 16);
                        result.Add(new VersionNeed(file, CString(elf, strtab, U32(elf, aux + 8)), U16(elf, aux + 4), aux + 4));
                        uint nextAux = U32(elf, aux + 12);
                        if (nextAux == 0) break;
                        aux += nextAux;
                    }
                    uint next = U32(elf, entry + 12);
                    if (next == 0) break;
                    entry += next;
                }
            }
            return result;
        }

        /// <summary>True when the image (a shared library) defines the version, e.g. libstdc++ defining GLIBCXX_3.4.32.</summary>
        /// <exception cref="ElfFormatException">The image is not a little-endian ELF or is truncated.</exception>
        public static bool DefinesVersion(byte[] elf, string versionName)
        {
            foreach (Section s in Sections(elf).Where(s => s.Type == ShtGnuVerdef))
            {
                Section strtab = StringTable(elf, s);
                long entry = s.Offset;
                for (int guard = 0; guard < 4096; guard++)
                {
                    Need(elf, entry, 20);
                    ushort count = U16(elf, entry + 6);
                    long aux = entry + U32(elf, entry + 12);
                    for (int i = 0; i < count; i++)
                    {
                        Need(elf, aux, 8);
                        if (CString(elf, strtab, U32(elf, aux)) == versionName) return true;
                        uint nextAux = U32(elf, aux + 4);
                        if (nextAux == 0) break;
                        aux += nextAux;
                    }
                    uint next = U32(elf, entry + 16);
                    if (next == 0) break;
                    entry += next;
                }
            }
            return false;
        }

        /// <summary>
        /// Sets <c>VER_FLG_WEAK</c> on every requirement named <paramref name="versionName"/>, writing
        /// through a temporary file and a rename, and keeping the file's timestamp.
        /// </summary>
        /// <exception cref="ElfFormatException">The file is not a little-endian ELF or is truncated.</exception>
        public static PatchOutcome MarkWeak(string path, string versionName)
        {
            byte[] elf = File.ReadAllBytes(path);
            List<VersionNeed> matches = Read(elf).Where(n => n.Name == versionName).ToList();
            if (matches.Count == 0) return PatchOutcome.NotRequired;
            if (matches.All(n => (n.Flags & VerFlagWeak) != 0)) return PatchOutcome.AlreadyWeak;
            foreach (VersionNeed n in matches)
            {
                ushort flags = (ushort)(n.Flags | VerFlagWeak);
                elf[n.FlagsOffset] = (byte)flags;
                elf[n.FlagsOffset + 1] = (byte)(flags >> 8);
            }
            DateTime stamp = File.GetLastWriteTimeUtc(path);
            string temp = path + ".qpeft-tmp";
            File.WriteAllBytes(temp, elf);
            File.SetLastWriteTimeUtc(temp, stamp);
            // A rename, not an in-place write: the output copy may be a hard link into the NuGet cache.
            File.Replace(temp, path, null);
            return PatchOutcome.Patched;
        }

        /// <summary>The first <c>libstdc++.so.6</c> in the usual library folders, or null.</summary>
        public static string? FindSystemLibStdCxx()
        {
            var dirs = new List<string>();
            string? ld = Environment.GetEnvironmentVariable("LD_LIBRARY_PATH");
            if (!string.IsNullOrEmpty(ld)) dirs.AddRange(ld.Split(new[] { ':' }, StringSplitOptions.RemoveEmptyEntries));
            dirs.AddRange(new[]
            {
                "/usr/lib/x86_64-linux-gnu", "/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/lib/aarch64-linux-gnu",
                "/usr/lib64", "/lib64", "/usr/lib", "/lib",
            });
            return dirs.Select(d => Path.Combine(d, "libstdc++.so.6")).FirstOrDefault(File.Exists);
        }

        private readonly struct Section
        {
            public Section(uint type, long offset, long size, uint link) { Type = type; Offset = offset; Size = size; Link = link; }
            public uint Type { get; }
            public long Offset { get; }
            public long Size { get; }
            public uint Link { get; }
        }

        private static List<Section> Sections(byte[] elf)
        {
            if (elf.Length < 52 || elf[0] != 0x7f || elf[1] != (byte)'E' || elf[2] != (byte)'L' || elf[3] != (byte)'F')
                throw new ElfFormatException("not an ELF file (bad magic)");
            if (elf[5] != 1) throw new ElfFormatException("big-endian ELF is not supported");
            bool is64 = elf[4] switch
            {
                2 => true,
                1 => false,
                _ => throw new ElfFormatException($"unknown ELF class {elf[4]}"),
            };
            if (is64) Need(elf, 0, 64);
            long shoff = is64 ? (long)U64(elf, 0x28) : U32(elf, 0x20);
            ushort shentsize = U16(elf, is64 ? 0x3A : 0x2E);
            ushort shnum = U16(elf, is64 ? 0x3C : 0x30);
            if (shoff == 0 || shnum == 0) throw new ElfFormatException("no section headers");
            if (shentsize < (is64 ? 64 : 40)) throw new ElfFormatException($"section header size {shentsize} too small");
            var list = new List<Section>(shnum);
            for (int i = 0; i < shnum; i++)
            {
                long h = shoff + (long)i * shentsize;
                Need(elf, h, shentsize);
                list.Add(is64
                    ? new Section(U32(elf, h + 4), (long)U64(elf, h + 24), (long)U64(elf, h + 32), U32(elf, h + 40))
                    : new Section(U32(elf, h + 4), U32(elf, h + 16), U32(elf, h + 20), U32(elf, h + 24)));
            }
            return list;
        }

        private static Section StringTable(byte[] elf, Section owner)
        {
            List<Section> all = Sections(elf);
            if (owner.Link >= all.Count) throw new ElfFormatException($"section link {owner.Link} out of range");
            Section strtab = all[(int)owner.Link];
            Need(elf, strtab.Offset, strtab.Size);
            return strtab;
        }

        private static string CString(byte[] elf, Section strtab, uint offset)
        {
            if (offset >= strtab.Size) throw new ElfFormatException($"string offset {offset} outside the string table");
            long start = strtab.Offset + offset;
            long end = start;
            long limit = strtab.Offset + strtab.Size;
            while (end < limit && elf[end] != 0) end++;
            return Encoding.ASCII.GetString(elf, (int)start, (int)(end - start));
        }

        private static void Need(byte[] elf, long offset, long count)
        {
            if (offset < 0 || count < 0 || offset + count > elf.Length)
                throw new ElfFormatException($"truncated: needs bytes [{offset}, {offset + count}) of {elf.Length}");
        }

        private static ushort U16(byte[] b, long o) { Need(b, o, 2); return (ushort)(b[o] | (b[o + 1] << 8)); }
        private static uint U32(byte[] b, long o) { Need(b, o, 4); return BitConverter.ToUInt32(b, (int)o); }
        private static ulong U64(byte[] b, long o) { Need(b, o, 8); return BitConverter.ToUInt64(b, (int)o); }
    }
}
