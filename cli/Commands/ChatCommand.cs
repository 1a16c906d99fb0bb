using System.CommandLine;
using QuantPeft.Trainers.Data;
using QuantPeft.Trainers.Generation;

namespace QuantPeft.Cli.Commands;

/// <summary>
/// <c>qpeft chat MODEL [--adapter A]</c>: an interactive conversation on the console. Each line is a user turn; the answer
/// streams token by token and is followed by its tokens/s. <c>/system TEXT</c> sets the system message (and starts over),
/// <c>/reset</c> starts over, <c>/exit</c> (or the end of input) quits. The KV cache is kept between turns, so a turn only
/// runs its own tokens.
/// </summary>
internal static class ChatCommand
{
    public static Command Create()
    {
        var flags = new GenerationFlags();
        var command = new Command("chat", "Talk to a model (and a trained adapter) on the console: /system TEXT, /reset, /exit");
        flags.AddTo(command);
        command.SetAction(parse => CliRunner.Run(() =>
        {
            var sampling = flags.Sampling(parse);
            using var loaded = flags.Load(parse);
            var template = ChatTemplate.FromModelFolder(loaded.Folder.StartsWith("synthetic:", StringComparison.Ordinal) ? "" : loaded.Folder);
            Run(loaded, template, sampling, parse.GetValue(flags.MaxNewTokens), Console.In, Console.Out);
            return CliRunner.Ok;
        }));
        return command;
    }

    internal static void Run(GenerationModel loaded, ChatTemplate template, SamplingOptions sampling, int maxNewTokens, TextReader input, TextWriter output)
    {
        var tokenizer = loaded.Tokenizer;
        var stops = ChatPrompt.StopIds(template, tokenizer);
        using var generator = new TextGenerator(loaded.Model, tokenizer.VocabSize);
        string? system = null;
        var history = new List<ChatMessage>();
        int turn = 0;
        output.WriteLine($"qpeft chat: {loaded.Folder}, template {template.Kind} ({template.Reason}). /system TEXT, /reset, /exit");
        while (true)
        {
            output.Write("> ");
            output.Flush();
            string? line = input.ReadLine();
            if (line is null || line.Trim() == "/exit") break;
            if (line.Trim() == "/reset" || line.StartsWith("/system ", StringComparison.Ordinal))
            {
                if (line.StartsWith("/system ", StringComparison.Ordinal)) system = line["/system ".Length..].Trim();
                generator.Reset();
                turn = 0;
                output.WriteLine(system is null ? "(conversation reset)" : $"(conversation reset; system: {system})");
                continue;
            }
            if (line.StartsWith('/'))
            {
                output.WriteLine($"unknown command '{line.Split(' ')[0]}': /system TEXT, /reset, /exit");
                continue;
            }
            if (turn == 0)
            {
                history.Clear();
                if (system is not null) history.Add(new ChatMessage("system", system));
            }
            history.Add(new ChatMessage("user", line));
            int[] ids;
            if (template.Kind == ChatTemplateKind.Jinja)
            {
                // A Jinja template may render earlier turns differently once later ones follow (a default system
                // prompt, dropped thinking), so each turn renders the whole conversation afresh.
                generator.Reset();
                ids = ChatPrompt.Encode(template, tokenizer, history);
            }
            else
            {
                // Each turn adds only its own messages after the cached conversation (BOS only on the first).
                var messages = turn == 0 ? history : [history[^1]];
                ids = ChatPrompt.Encode(template, tokenizer, messages, withBos: turn == 0);
            }
            var stream = new GenerationFlags.StreamingText(tokenizer, output);
            var result = generator.Generate(ids, maxNewTokens, sampling, stops, stream.Add);
            stream.Finish();
            history.Add(new ChatMessage("assistant", tokenizer.Decode([.. result.Tokens.Where(t => !stops.Contains(t))])));
            if (template.Kind != ChatTemplateKind.Jinja)
                generator.Append(ChatPrompt.TurnClosing(template.Kind, tokenizer, result.StoppedBy is not null));
            output.WriteLine();
            output.WriteLine($"[{result.Tokens.Count} tokens, {result.Tokens.Count / Math.Max(result.Seconds, 1e-9):0.0} tokens/s{(result.StoppedBy is null ? ", token limit" : "")}]");
            turn++;
        }
    }
}
