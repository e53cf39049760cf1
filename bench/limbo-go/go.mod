module duet/bench/limbo-go

go 1.19
