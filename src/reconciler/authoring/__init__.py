"""Authoring: edit spec files in place and turn the edits into commits.

The commands `q2q new`, `activate`, `deactivate` and `rollback` and the pull
request checks (`q2q validate --base`, `q2q plan --format markdown`) build on
these modules. Text edits keep every byte that they do not change.
"""
