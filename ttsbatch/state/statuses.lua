-- Prelude: the statuses of a job still under way.
local active = {queued = true, running = true, stitching = true}
