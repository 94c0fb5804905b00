# fish completion for lanpeer.
#
# For this shell:   lanpeer completion fish | source
# For every shell:  lanpeer completion fish > ~/.config/fish/completions/lanpeer.fish
#
# lanpeer itself answers: the words typed so far, then the current word if it
# starts with '-', then --generate-bash-completion; it prints one candidate a
# line. An empty answer falls back to file names. urfave/cli runs a command
# line holding "--" instead of completing it, so after a "--" lanpeer is not
# asked, and a current word of "--" is passed as "-".

function __lanpeer_complete
    set -l args (commandline -opc)
    set -l cur (commandline -ct)
    if contains -- -- $args
        __fish_complete_path $cur
        return
    end
    if test "$cur" = --
        set -a args - # the same candidates, without a "--" on the command line
    else if string match -q -- '-*' $cur
        set -a args $cur
    end
    set -l cmd $args[1]
    set -e args[1]
    set -l out ($cmd $args --generate-bash-completion 2>/dev/null)
    if test (count $out) -gt 0
        printf '%s\n' $out
    else
        __fish_complete_path $cur
    end
end

complete -c lanpeer -f -a '(__lanpeer_complete)'
