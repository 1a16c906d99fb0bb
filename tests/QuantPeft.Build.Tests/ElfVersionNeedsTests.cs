using System.Reflection;
using Microsoft.Build.Framework;
using Microsoft.Build.Utilities;

namespace QuantPeft.Build.Tests;

public class ElfVersionNeedsTests
{
    private static string PackageRoot =>
        typeof(ElfVersionNeedsTests).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
            .Single(a => a.Key == "NuGetPackageRoot").Value!;

    private static string OriginalLibrary =>
        Path.Combine(PackageRoot, "torchsharp", "0.107.0", "runtimes", "linux-x64", "native", "libLibTorchSharp.so");

    [Fact]
    public void HandBuiltElfGetsExactlyTheNamedNeedWeakened()
    {
        string path = TempFile(MinimalElf.Build(("libstdc++.so.6", new[] { "GLIBCXX_3.4.30", "GLIBCXX_3.4.32" }), ("libc.so.6", new[] { "GLIBC_2.34" })));
        byte[] before = File.ReadAllBytes(path);

        Assert.Equal(QuantPeft.Build.PatchOutcome.Patched, ElfVersionNeeds.MarkWeak(path, "GLIBCXX_3.4.32"));

        byte[] after = File.ReadAllBytes(path);
        int[] changed = Enumerable.Range(0, before.Length).Where(i => before[i] != after[i]).ToArray();
        Assert.Single(changed);
        var needs = ElfVersionNeeds.Read(after);
        Assert.Equal(3, needs.Count);
        Assert.Equal(ElfVersionNeeds.VerFlagWeak, needs.Single(n => n.Name == "GLIBCXX_3.4.32").Flags);
        Assert.All(needs.Where(n => n.Name != "GLIBCXX_3.4.32"), n => Assert.Equal(0, n.Flags));
        Assert.Equal("libc.so.6", needs.Single(n => n.Name == "GLIBC_2.34").File);
        // Idempotent: a second run changes nothing.
        Assert.Equal(QuantPeft.Build.PatchOutcome.AlreadyWeak, ElfVersionNeeds.MarkWeak(path, "GLIBCXX_3.4.32"));
        Assert.Equal(after, File.ReadAllBytes(path));
    }

    [Fact]
    public void FileWithoutTheNeedIsLeftAlone()
    {
        string path = TempFile(MinimalElf.Build(("libstdc++.so.6", new[] { "GLIBCXX_3.4.30" })));
        byte[] before = File.ReadAllBytes(path);
        Assert.Equal(QuantPeft.Build.PatchOutcome.NotRequired, ElfVersionNeeds.MarkWeak(path, "GLIBCXX_3.4.32"));
        Assert.Equal(before, File.ReadAllBytes(path));
    }

    [Theory]
    [InlineData(new byte[0])]
    [InlineData(new byte[] { 0x7f, (byte)'E', (byte)'L', (byte)'F', 2, 1 })]
    [InlineData(new byte[] { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, 52, 53 })]
    public void NonElfOrTruncatedInputIsRejected(byte[] bytes)
    {
        Assert.Throws<ElfFormatException>(() => ElfVersionNeeds.Read(bytes));
    }

    [Fact]
    public void TruncatedCopyOfHandBuiltElfIsRejectedNotMisread()
    {
        byte[] elf = MinimalElf.Build(("libstdc++.so.6", new[] { "GLIBCXX_3.4.32" }));
        for (int cut = 1; cut < elf.Length; cut += 7)
        {
            byte[] part = elf[..cut];
            try { ElfVersionNeeds.Read(part); }
            catch (ElfFormatException) { }
        }
        Assert.Throws<ElfFormatException>(() => ElfVersionNeeds.Read(elf[..(elf.Length - 1)]));
    }

    [Fact]
    public void RealTorchSharpLibraryNeedsTheVersionAndPatchesInOneByte()
    {
        Assert.True(File.Exists(OriginalLibrary), $"TorchSharp's native library not found at {OriginalLibrary}");
        byte[] original = File.ReadAllBytes(OriginalLibrary);
        var need = ElfVersionNeeds.Read(original).Single(n => n.Name == "GLIBCXX_3.4.32");
        Assert.Equal("libstdc++.so.6", need.File);
        Assert.Equal(0, need.Flags & ElfVersionNeeds.VerFlagWeak);

        string copy = TempFile(original);
        Assert.Equal(QuantPeft.Build.PatchOutcome.Patched, ElfVersionNeeds.MarkWeak(copy, "GLIBCXX_3.4.32"));
        byte[] patched = File.ReadAllBytes(copy);
        Assert.Equal(original.Length, patched.Length);
        Assert.Equal(new[] { need.FlagsOffset }, Enumerable.Range(0, original.Length).Where(i => original[i] != patched[i]).Select(i => (long)i));
        // The NuGet cache copy is untouched (we only ever rename over the output copy).
        Assert.Equal(0, ElfVersionNeeds.Read(File.ReadAllBytes(OriginalLibrary)).Single(n => n.Name == "GLIBCXX_3.4.32").Flags);
    }

    [Fact]
    public void BuildOutputCopyIsWeakExactlyWhenSystemLibStdCxxLacksTheVersion()
    {
        string output = Path.Combine(AppContext.BaseDirectory, "runtimes", "linux-x64", "native", "libLibTorchSharp.so");
        Assert.True(File.Exists(output), $"expected TorchSharp's native library in the test output at {output}");
        string? system = ElfVersionNeeds.FindSystemLibStdCxx();
        bool systemHasIt = system != null && ElfVersionNeeds.DefinesVersion(File.ReadAllBytes(system), "GLIBCXX_3.4.32");
        ushort flags = ElfVersionNeeds.Read(File.ReadAllBytes(output)).Single(n => n.Name == "GLIBCXX_3.4.32").Flags;
        Assert.Equal(!systemHasIt, (flags & ElfVersionNeeds.VerFlagWeak) != 0);
    }

    [Fact]
    public void TaskSkipsWhenTheSystemLibraryDefinesTheVersionAndPatchesOtherwise()
    {
        byte[] lib = MinimalElf.Build(("libstdc++.so.6", new[] { "GLIBCXX_3.4.32" }));
        byte[] modernStdCxx = MinimalElf.BuildDefinitions("GLIBCXX_3.4.31", "GLIBCXX_3.4.32");
        byte[] oldStdCxx = MinimalElf.BuildDefinitions("GLIBCXX_3.4.29", "GLIBCXX_3.4.30");
        Assert.True(ElfVersionNeeds.DefinesVersion(modernStdCxx, "GLIBCXX_3.4.32"));
        Assert.False(ElfVersionNeeds.DefinesVersion(oldStdCxx, "GLIBCXX_3.4.32"));

        string target = TempFile(lib);
        var engine = new RecordingEngine();
        var skip = new PatchLibStdCxxVersionNeed { BuildEngine = engine, Libraries = [new TaskItem(target)], SystemLibStdCxx = TempFile(modernStdCxx) };
        Assert.True(skip.Execute());
        Assert.Equal(lib, File.ReadAllBytes(target));

        var patch = new PatchLibStdCxxVersionNeed { BuildEngine = engine, Libraries = [new TaskItem(target)], SystemLibStdCxx = TempFile(oldStdCxx) };
        Assert.True(patch.Execute());
        Assert.Contains(engine.Messages, m => m.Contains("marked the GLIBCXX_3.4.32 version need weak"));
        Assert.Equal(ElfVersionNeeds.VerFlagWeak, ElfVersionNeeds.Read(File.ReadAllBytes(target)).Single().Flags);
    }

    [Fact]
    public void TaskReportsAnErrorNamingTheFileForGarbage()
    {
        string target = TempFile([1, 2, 3]);
        var engine = new RecordingEngine();
        var task = new PatchLibStdCxxVersionNeed { BuildEngine = engine, Libraries = [new TaskItem(target)], SystemLibStdCxx = "/nonexistent/libstdc++.so.6" };
        Assert.False(task.Execute());
        Assert.Contains(engine.Errors, e => e.Contains(target) && e.Contains("bad magic"));
    }

    private static string TempFile(byte[] content)
    {
        string path = Path.Combine(Path.GetTempPath(), "qpeft-elf-" + Guid.NewGuid().ToString("N") + ".so");
        File.WriteAllBytes(path, content);
        return path;
    }

    private sealed class RecordingEngine : IBuildEngine
    {
        public List<string> Messages { get; } = [];
        public List<string> Errors { get; } = [];
        public bool ContinueOnError => false;
        public int LineNumberOfTaskNode => 0;
        public int ColumnNumberOfTaskNode => 0;
        public string ProjectFileOfTaskNode => "test";
        public bool BuildProjectFile(string projectFileName, string[] targetNames, System.Collections.IDictionary globalProperties, System.Collections.IDictionary targetOutputs) => false;
        public void LogCustomEvent(CustomBuildEventArgs e) { }
        public void LogErrorEvent(BuildErrorEventArgs e) => Errors.Add(e.Message ?? "");
        public void LogMessageEvent(BuildMessageEventArgs e) => Messages.Add(e.Message ?? "");
        public void LogWarningEvent(BuildWarningEventArgs e) => Messages.Add(e.Message ?? "");
    }
}
