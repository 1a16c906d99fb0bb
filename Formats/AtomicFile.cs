using System.Runtime.InteropServices;

namespace QuantPeft.Formats;

/// <summary>
/// The one way QuantPeft writes a whole file: readers see either the old content or the complete new one, never a
/// partial file, and once a write returns its content and its name survive a power loss.
/// </summary>
/// <remarks>
/// The content goes to a uniquely named temporary file beside the target, which is flushed to the disk (fsync)
/// before it is renamed over the target; the directory is then fsynced, because on Linux the rename itself lives in
/// the directory and is otherwise lost with the page cache (ext4 and xfs document this). The temporary name carries
/// the process id and a random part, so two processes writing the same target never share a temporary. A failed
/// write deletes its temporary and leaves the target as it was. The target's directory must exist: a mistyped
/// output folder is an error, not a folder created silently; writers that own their folder create it first.
/// </remarks>
public static partial class AtomicFile
{
    /// <summary>The suffix of every temporary file; a crash mid-write leaves at most a file ending in it.</summary>
    public const string TempSuffix = ".qpeft-tmp";

    /// <summary>Writes what <paramref name="write"/> puts into the stream to <paramref name="path"/>, atomically and durably.</summary>
    /// <exception cref="DirectoryNotFoundException">The directory of <paramref name="path"/> does not exist.</exception>
    public static void Write(string path, Action<Stream> write)
    {
        ArgumentNullException.ThrowIfNull(write);
        string full = Path.GetFullPath(path);
        string dir = Path.GetDirectoryName(full) ?? ".";
        if (!Directory.Exists(dir))
            throw new DirectoryNotFoundException($"{path}: directory '{dir}' does not exist");
        string temp = Path.Combine(dir, $".{Path.GetFileName(full)}.{Environment.ProcessId}.{Guid.NewGuid():N}{TempSuffix}");
        try
        {
            using (var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16))
            {
                write(stream);
                stream.Flush(flushToDisk: true);
            }
            File.Move(temp, full, overwrite: true);
        }
        finally
        {
            if (File.Exists(temp)) File.Delete(temp);
        }
        SyncDirectory(dir);
    }

    /// <summary>Writes <paramref name="bytes"/> to <paramref name="path"/> (see <see cref="Write"/>).</summary>
    /// <exception cref="DirectoryNotFoundException">The directory of <paramref name="path"/> does not exist.</exception>
    public static void WriteAllBytes(string path, byte[] bytes) => Write(path, s => s.Write(bytes));

    /// <summary>Writes <paramref name="content"/> as UTF-8 without a byte-order mark to <paramref name="path"/> (see <see cref="Write"/>).</summary>
    /// <exception cref="DirectoryNotFoundException">The directory of <paramref name="path"/> does not exist.</exception>
    public static void WriteAllText(string path, string content) =>
        WriteAllBytes(path, new System.Text.UTF8Encoding(encoderShouldEmitUTF8Identifier: false).GetBytes(content));

    /// <summary>
    /// Flushes <paramref name="directory"/>'s entries (a rename or a new file in it) to the disk. Does nothing where a
    /// directory cannot be opened for fsync (Windows, whose renames are journaled by NTFS).
    /// </summary>
    /// <exception cref="IOException">The fsync failed.</exception>
    public static void SyncDirectory(string directory)
    {
        if (!OperatingSystem.IsLinux() && !OperatingSystem.IsMacOS() && !OperatingSystem.IsFreeBSD()) return;
        int fd = Open(directory, 0 /* O_RDONLY */);
        if (fd < 0)
            throw new IOException($"{directory}: cannot open the directory to flush it (errno {Marshal.GetLastPInvokeError()})");
        try
        {
            if (Fsync(fd) != 0)
                throw new IOException($"{directory}: fsync of the directory failed (errno {Marshal.GetLastPInvokeError()})");
        }
        finally
        {
            _ = Close(fd);
        }
    }

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "fsync", SetLastError = true)]
    private static partial int Fsync(int fd);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    private static partial int Close(int fd);
}
