"""Helpers shared by test files (not tests themselves)."""

from aekit import cli


def expect_cli_error(capsys, argv) -> str:
    """Run argv, expect a user error: exit status 2 and one line 'aekit: error: ...' on stderr."""
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("aekit: error: "), err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err
