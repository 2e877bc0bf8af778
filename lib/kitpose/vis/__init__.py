"""Pictures: skeletons and keypoints on images (`draw`), heatmap overlays and grids (`heatmaps`)."""
