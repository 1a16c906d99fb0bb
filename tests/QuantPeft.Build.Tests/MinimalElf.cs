using System.Text;

namespace QuantPeft.Build.Tests;

/// <summary>
/// Writes tiny ELF64 images by hand, from the ELF specification rather than from the patcher's code:
/// a header, a string table, a <c>.gnu.version_r</c> (or <c>.gnu.version_d</c>) section and section headers.
/// </summary>
internal static class MinimalElf
{
    public static byte[] Build(params (string File, string[] Versions)[] needs)
    {
        var strings = new StringTable();
        var sec = new MemoryStream();
        for (int f = 0; f < needs.Length; f++)
        {
            var (file, versions) = needs[f];
            bool last = f == needs.Length - 1;
            int entrySize = 16 + 16 * versions.Length;
            W16(sec, 1); W16(sec, (ushort)versions.Length); W32(sec, strings.Add(file)); W32(sec, 16); W32(sec, last ? 0u : (uint)entrySize);
            for (int v = 0; v < versions.Length; v++)
            {
                W32(sec, 0x1234); W16(sec, 0); W16(sec, (ushort)(10 + v)); W32(sec, strings.Add(versions[v]));
                W32(sec, v == versions.Length - 1 ? 0u : 16u);
            }
        }
        return Assemble(sec.ToArray(), 0x6ffffffe, strings);
    }

    public static byte[] BuildDefinitions(params string[] versions)
    {
        var strings = new StringTable();
        var sec = new MemoryStream();
        for (int v = 0; v < versions.Length; v++)
        {
            bool last = v == versions.Length - 1;
            W16(sec, 1); W16(sec, 0); W16(sec, (ushort)(v + 2)); W16(sec, 1); W32(sec, 0x99); W32(sec, 20); W32(sec, last ? 0u : 28u);
            W32(sec, strings.Add(versions[v])); W32(sec, 0);
        }
        return Assemble(sec.ToArray(), 0x6ffffffd, strings);
    }

    private static byte[] Assemble(byte[] section, uint type, StringTable strings)
    {
        byte[] str = strings.Bytes();
        long secOff = 64, strOff = secOff + section.Length, shOff = (strOff + str.Length + 7) / 8 * 8;
        var ms = new MemoryStream();
        ms.Write([0x7f, (byte)'E', (byte)'L', (byte)'F', 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        W16(ms, 3); W16(ms, 62); W32(ms, 1); W64(ms, 0); W64(ms, 0); W64(ms, (ulong)shOff);
        W32(ms, 0); W16(ms, 64); W16(ms, 56); W16(ms, 0); W16(ms, 64); W16(ms, 3); W16(ms, 2);
        ms.Write(section);
        ms.Write(str);
        while (ms.Length < shOff) ms.WriteByte(0);
        ms.Write(new byte[64]); // null section
        SectionHeader(ms, type, secOff, section.Length, link: 2);
        SectionHeader(ms, 3, strOff, str.Length, link: 0);
        return ms.ToArray();
    }

    private static void SectionHeader(Stream s, uint type, long offset, long size, uint link)
    {
        W32(s, 0); W32(s, type); W64(s, 2); W64(s, 0); W64(s, (ulong)offset); W64(s, (ulong)size); W32(s, link); W32(s, 0); W64(s, 8); W64(s, 0);
    }

    private static void W16(Stream s, ushort v) => s.Write(BitConverter.GetBytes(v));
    private static void W32(Stream s, uint v) => s.Write(BitConverter.GetBytes(v));
    private static void W64(Stream s, ulong v) => s.Write(BitConverter.GetBytes(v));

    private sealed class StringTable
    {
        private readonly MemoryStream _ms = new();
        public StringTable() => _ms.WriteByte(0);
        public uint Add(string s) { uint at = (uint)_ms.Position; _ms.Write(Encoding.ASCII.GetBytes(s + "\0")); return at; }
        public byte[] Bytes() => _ms.ToArray();
    }
}
