using System.Text;
using System.Text.RegularExpressions;
using QuantPeft.Formats;
using QuantPeft.Trainers.Data;
using QuantPeft.Trainers.Tokenizers;

namespace QuantPeft.Trainers.Tests.Data;

/// <summary>
/// Mutation fuzzing of the data path: valid files of every record shape are mutated at random (byte flips,
/// deletions, insertions of JSON punctuation, escapes and lone surrogates, line splices) and prepared end to end.
/// Every mutated file must either prepare or fail with a user error (what the CLI turns into exit 1) whose one-line
/// message names the file and, unless the whole file is at fault, the line. Any other exception is a reader bug.
/// </summary>
public class DataReaderFuzzTests
{
    private static readonly string[] Seeds =
    [
        "{\"text\": \"The quiet boat follows the map.\"}\n{\"text\": \"37 + 45 = 82.\"}\n",
        "{\"prompt\": \"upper: cmiv => \", \"completion\": \"CMIV\"}\n{\"prompt\": \"upper: ab => \", \"completion\": \"AB\"}\n",
        "{\"messages\": [{\"role\": \"system\", \"content\": \"be brief\"}, {\"role\": \"user\", \"content\": \"hi\"}, {\"role\": \"assistant\", \"content\": \"yo\"}]}\n"
            + "{\"messages\": [{\"role\": \"user\", \"content\": \"2+2?\"}, {\"role\": \"assistant\", \"content\": \"4\"}, {\"role\": \"user\", \"content\": \"and 3+3?\"}, {\"role\": \"assistant\", \"content\": \"6\"}]}\n",
        "{\"instruction\": \"Add\", \"input\": \"2 and 3\", \"output\": \"5\"}\n{\"instruction\": \"Greet\", \"output\": \"Hi\", \"system\": \"Be kind\"}\n",
        "{\"conversations\": [{\"from\": \"system\", \"value\": \"s\"}, {\"from\": \"human\", \"value\": \"hi\"}, {\"from\": \"gpt\", \"value\": \"yo\"}]}\n"
            + "{\"conversations\": [{\"from\": \"human\", \"value\": \"a\"}, {\"from\": \"gpt\", \"value\": \"b\"}]}\n",
    ];

    // One record per file, mostly without a system turn (Gemma refuses those, rightly, and would refuse every file).
    private static readonly string[] ChatSeeds =
    [
        "{\"messages\": [{\"role\": \"user\", \"content\": \"2+2?\"}, {\"role\": \"assistant\", \"content\": \"4\"}]}\n",
        "{\"instruction\": \"Add\", \"input\": \"2 and 3\", \"output\": \"5\"}\n",
        "{\"conversations\": [{\"from\": \"human\", \"value\": \"a\"}, {\"from\": \"gpt\", \"value\": \"b\"}]}\n",
        "{\"conversations\": [{\"from\": \"system\", \"value\": \"s\"}, {\"from\": \"human\", \"value\": \"hi\"}, {\"from\": \"gpt\", \"value\": \"yo\"}]}\n",
    ];

    // Fragments that reach the reader's less travelled paths: escapes, lone surrogates, nesting, wrong types.
    private static readonly string[] Splices =
    [
        "\\ud800", "\\udfff", "\\ud83d\\ude00", "\\u0000", "\\\"", "\"", "{", "}", "[", "]", ",", ":", "null", "true", "1e400", "-0",
        "\"text\"", "\"messages\"", "\"role\"", "\"content\"", "\"assistant\"", "\"user\"", "\"system\"", "\"gpt\"", "\"human\"",
        "\"from\"", "\"value\"", "\"output\"", "\"input\"", "\n", "\r\n", "\uFEFF", "😀", "\\",
    ];

    /// <summary>Deterministic: the same seed gives the same files on every run, so a failure reproduces.</summary>
    [Fact]
    public void EveryMutatedFilePreparesOrNamesTheFileAndLine()
    {
        var random = new Random(20261207);
        using var dir = new TempDir();
        var failures = new List<string>();
        int prepared = 0, rejected = 0;
        for (int i = 0; i < 600; i++)
        {
            byte[] bytes = Mutate(Encoding.UTF8.GetBytes(Seeds[i % Seeds.Length]), random);
            string path = dir.File($"m{i}.jsonl");
            File.WriteAllBytes(path, bytes);
            string? problem = Check(path, out bool ok);
            if (problem is not null) failures.Add($"m{i}.jsonl: {problem}");
            else if (ok) prepared++;
            else rejected++;
        }
        Assert.True(failures.Count == 0, string.Join("\n", failures.Take(5)));
        // Both outcomes must occur, or the mutations are too weak (all pass) or too strong (nothing parses).
        Assert.True(prepared > 30 && rejected > 30, $"prepared {prepared}, rejected {rejected}");
    }

    /// <summary>The same through real chat templates, which raise on role orders they forbid (Gemma 2) or rewrite turns (Qwen3).</summary>
    [Theory]
    [InlineData("google-gemma-2-2b-it")]
    [InlineData("Qwen-Qwen3-0.6B")]
    public void MutatedChatFilesThroughARealTemplatePrepareOrNameTheFileAndLine(string templateName)
    {
        string? sample = null;
        var template = ChatTemplate.FromJinja(File.ReadAllText(Path.Combine(Templates.TemplateFixtures.Folder, templateName + ".jinja")), templateName, "<s>", "</s>");
        var random = new Random(7);
        using var dir = new TempDir();
        // Unmutated, every seed prepares (but for Gemma, the one with a system turn).
        for (int k = 0; k < ChatSeeds.Length; k++)
        {
            string seedPath = dir.Write($"seed{k}.jsonl", ChatSeeds[k]);
            Assert.Null(Check(seedPath, out bool seedOk, template));
            Assert.True(seedOk || (templateName.Contains("gemma") && k == 3), $"seed {k}: {LastRejection}");
        }
        var failures = new List<string>();
        int prepared = 0, rejected = 0;
        for (int i = 0; i < 200; i++)
        {
            byte[] bytes = Mutate(Encoding.UTF8.GetBytes(ChatSeeds[i % ChatSeeds.Length]), random);
            string path = dir.File($"c{i}.jsonl");
            File.WriteAllBytes(path, bytes);
            string? problem = Check(path, out bool ok, template);
            if (problem is not null) failures.Add($"c{i}.jsonl: {problem}");
            else if (ok) prepared++;
            else
            {
                rejected++;
                if (LastRejection is { } r && !r.Contains("UTF-8", StringComparison.Ordinal) && !r.Contains("invalid JSON", StringComparison.Ordinal)) sample = r;
            }
        }
        Assert.True(failures.Count == 0, string.Join("\n", failures.Take(5)));
        Assert.True(prepared >= 1 && rejected > 10, $"prepared {prepared}, rejected {rejected}; for example {sample}");
    }

    /// <summary>Mutated template sources parse and render, or fail with a <see cref="Trainers.Data.Templates.TemplateException"/>; nothing else.</summary>
    [Fact]
    public void MutatedTemplatesRenderOrFailWithATemplateError()
    {
        var random = new Random(11);
        var messages = new List<ChatMessage> { new("system", "s"), new("user", "hi"), new("assistant", "yo"), new("user", "again") };
        string[] sources = [.. Directory.GetFiles(Templates.TemplateFixtures.Folder, "*.jinja").Order(StringComparer.Ordinal).Select(File.ReadAllText)];
        var failures = new List<string>();
        int rendered = 0, refused = 0;
        for (int i = 0; i < 400; i++)
        {
            string source = Encoding.UTF8.GetString(Mutate(Encoding.UTF8.GetBytes(sources[i % sources.Length]), random));
            try
            {
                ChatTemplate.FromJinja(source, $"m{i}.jinja", "<s>", "</s>").Render(messages, addGenerationPrompt: true);
                rendered++;
            }
            catch (Trainers.Data.Templates.TemplateException e)
            {
                refused++;
                if (e.Message.Contains('\n') || !e.Message.Contains($"m{i}.jinja", StringComparison.Ordinal)) failures.Add($"m{i}: {e.Message}");
            }
            catch (Exception e)
            {
                failures.Add($"m{i}: internal error {e.GetType().Name}: {e.Message}");
            }
        }
        Assert.True(failures.Count == 0, string.Join("\n", failures.Take(5)));
        Assert.True(rendered > 50 && refused > 50, $"rendered {rendered}, refused {refused}");
    }

    [Fact]
    public void EscapedLoneSurrogateIsABadLineNamingTheField()
    {
        using var dir = new TempDir();
        string path = dir.Write("s.jsonl", "{\"text\": \"ok\"}\n{\"text\": \"\\ud800\"}\n{\"messages\": [{\"role\": \"user\", \"content\": \"a\\udc00b\"}]}\n");
        var e = Assert.Throws<DatasetFormatException>(() => JsonlDatasetReader.Read(path));
        Assert.Equal([2, 3], e.Errors.Select(x => x.Line));
        Assert.StartsWith("field 'text' holds an escaped lone surrogate", e.Errors[0].Problem);
        Assert.StartsWith("field 'messages[0].content' holds an escaped lone surrogate", e.Errors[1].Problem);
        // A correctly paired escape is text.
        string good = dir.Write("g.jsonl", "{\"text\": \"\\ud83d\\ude00\"}\n");
        Assert.Equal("😀", Assert.Single(JsonlDatasetReader.Read(good)).Text);
    }

    /// <summary>Null when the outcome is acceptable; <paramref name="ok"/> says whether the file prepared.</summary>
    internal static string? Check(string path, out bool ok, ChatTemplate? template = null)
    {
        ok = false;
        LastRejection = null;
        try
        {
            var options = new DatasetOptions { SequenceLength = template is null ? 64 : 1024, Layout = RowLayout.Padded, Truncation = TruncationPolicy.Drop, Seed = 1 };
            TrainingDataset.Load(path, ByteLevelTokenizer.Instance, options, maxPositionEmbeddings: 4096, template);
            ok = true;
            return null;
        }
        catch (QuantPeftException e)
        {
            LastRejection = e.Message;
            if (e.Message.Contains('\n')) return $"message spans lines: {e.Message}";
            if (!e.Message.Contains(path, StringComparison.Ordinal)) return $"message does not name the file: {e.Message}";
            bool wholeFile = e.Message.Contains("no records", StringComparison.Ordinal) || e.Message.Contains("no training rows", StringComparison.Ordinal);
            if (!wholeFile && !Regex.IsMatch(e.Message, @"line \d+")) return $"message names no line: {e.Message}";
            return null;
        }
        catch (Exception e)
        {
            return $"internal error {e.GetType().Name}: {e.Message}";
        }
    }

    [ThreadStatic] private static string? _lastRejection;

    private static string? LastRejection { get => _lastRejection; set => _lastRejection = value; }

    internal static byte[] Mutate(byte[] source, Random random)
    {
        var bytes = new List<byte>(source);
        int edits = 1 + random.Next(3);
        for (int k = 0; k < edits; k++)
        {
            int at = random.Next(bytes.Count + 1);
            switch (random.Next(5))
            {
                case 0 when at < bytes.Count:
                    bytes[at] = (byte)random.Next(256);
                    break;
                case 1 when at < bytes.Count:
                    bytes.RemoveRange(at, Math.Min(1 + random.Next(4), bytes.Count - at));
                    break;
                case 2:
                    int len = Math.Min(1 + random.Next(12), source.Length);
                    int from = random.Next(source.Length - len + 1);
                    bytes.InsertRange(at, source.AsSpan(from, len).ToArray());
                    break;
                default:
                    // Splice inside a string value more often than not: that is where escapes matter.
                    int quote = bytes.IndexOf((byte)'"', Math.Min(at, bytes.Count));
                    int where = quote >= 0 && random.Next(3) > 0 ? quote + 1 : at;
                    bytes.InsertRange(where, Encoding.UTF8.GetBytes(Splices[random.Next(Splices.Length)]));
                    break;
            }
        }
        return [.. bytes];
    }
}
