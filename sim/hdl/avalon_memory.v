// Avalon-MM memory model for testbenches: one read port and one write port (bursts, byte enables),
// random wait states and read latency from a seeded xorshift generator, and whole-image load and
// dump through $readmemh/$writememh so that the test program stays off the per-cycle path.
// Addresses are byte addresses; the memory holds DEPTH words of DATA_W bits starting at BASE.
//
// The memory window: every burst is checked, as it is accepted, against [win_base, win_base +
// win_size) (64-bit arithmetic: a burst that wraps past 2**32 is outside). An access outside it
// sets win_fault (sticky until reset) and records the first one in win_fault_addr /
// win_fault_beats / win_fault_write, whatever the test checks afterwards. rd_beats and wr_beats
// count every beat accepted, so a test sees how much memory a descriptor touched.
//
// Read commands wait in a queue of QUEUE bursts (a power of two); while it is full the read port
// holds waitrequest, as a real memory's command FIFO does. QUEUE is larger than the outstanding
// bursts of any load of the engines tested, so without random stalls no read waits.
module avalon_memory #(
    parameter DATA_W = 128,
    parameter BURST_W = 7,
    parameter DEPTH = 65536,
    parameter QUEUE = 1024
) (
    input clk,
    input rst,
    // read port
    input [31:0] rd_address,
    input rd_read,
    input [BURST_W-1:0] rd_burstcount,
    output rd_waitrequest,
    output reg [DATA_W-1:0] rd_readdata,
    output reg rd_readdatavalid,
    // write port
    input [31:0] wr_address,
    input wr_write,
    input [BURST_W-1:0] wr_burstcount,
    input [DATA_W-1:0] wr_writedata,
    input [DATA_W/8-1:0] wr_byteenable,
    output wr_waitrequest,
    // control
    input [31:0] base,
    input [31:0] seed,
    input [7:0] stall_pct,      // percent of cycles with waitrequest high (each port)
    input [7:0] gap_pct,        // percent of cycles without a read beat while one is due
    input [7:0] latency_min,
    input [7:0] latency_max,
    input load,                  // rising edge: $readmemh(MEMFILE)
    input dump,                  // rising edge: $writememh(DUMPFILE)
    input [31:0] win_base,       // the window the engine may access
    input [31:0] win_size,
    output reg fault,            // an access outside the memory
    output reg win_fault,        // an access outside the window
    output reg [31:0] win_fault_addr,
    output reg [BURST_W-1:0] win_fault_beats,
    output reg win_fault_write,
    output reg [31:0] rd_beats,  // read beats requested (burst lengths of accepted commands)
    output reg [31:0] wr_beats   // write beats accepted
);
    localparam BYTES = DATA_W / 8;
    reg [DATA_W-1:0] mem [0:DEPTH-1];
    reg [1023:0] memfile;
    reg [1023:0] dumpfile;
    initial begin
        if (!$value$plusargs("MEMFILE=%s", memfile)) memfile = "memory.hex";
        if (!$value$plusargs("DUMPFILE=%s", dumpfile)) dumpfile = "memory_out.hex";
    end
    reg load_q, dump_q;
    always @(posedge clk) begin
        load_q <= load;
        dump_q <= dump;
        if (load && !load_q) $readmemh(memfile, mem);
        if (dump && !dump_q) $writememh(dumpfile, mem);
    end

    // xorshift32 random source
    reg [31:0] rng;
    wire [31:0] rng_next = rng ^ (rng << 13) ^ ((rng ^ (rng << 13)) >> 17) ^
                           ((rng ^ (rng << 13) ^ ((rng ^ (rng << 13)) >> 17)) << 5);
    reg [31:0] r1, r2, r3;
    always @(posedge clk) begin
        if (rst) rng <= (seed == 0) ? 32'h1234_5678 : seed;
        else rng <= rng_next;
        r1 <= rng;
        r2 <= {rng[15:0], rng[31:16]};
        r3 <= {rng[7:0], rng[31:8]};
    end
    wire rd_stall = (r1 % 100) < stall_pct;
    wire wr_stall = (r2 % 100) < stall_pct;
    wire rd_gap = (r3 % 100) < gap_pct;
    wire q_full;
    assign rd_waitrequest = rd_stall | q_full;
    assign wr_waitrequest = wr_stall;

    // read command queue: address (word index), beats, due time
    reg [31:0] q_addr [0:QUEUE-1];
    reg [BURST_W-1:0] q_len [0:QUEUE-1];
    reg [63:0] q_due [0:QUEUE-1];
    localparam QW = $clog2(QUEUE);
    reg [QW:0] q_head, q_tail;            // one bit more than an index: full and empty differ
    reg [63:0] now;
    reg [BURST_W-1:0] beat;
    wire [31:0] lat_span = latency_max - latency_min + 1;
    wire q_empty = q_head == q_tail;
    wire [QW:0] q_count = q_tail - q_head;
    assign q_full = q_count[QW];            // QUEUE bursts waiting (never more)

    // window check of a burst: [addr, addr + beats * BYTES) inside [win_base, win_base + win_size)
    function outside_window(input [31:0] addr, input [BURST_W-1:0] beats);
        reg [63:0] lo, hi, wlo, whi;
        begin
            lo = {32'd0, addr};
            hi = lo + beats * BYTES;
            wlo = {32'd0, win_base};
            whi = wlo + {32'd0, win_size};
            outside_window = (lo < wlo) || (hi > whi);
        end
    endfunction

    always @(posedge clk) begin
        if (rst) begin
            q_head <= 0; q_tail <= 0; now <= 0; beat <= 0;
            rd_readdatavalid <= 0; fault <= 0; rd_beats <= 0;
        end else begin
            now <= now + 1;
            rd_readdatavalid <= 0;
            if (rd_read && !rd_waitrequest) begin
                rd_beats <= rd_beats + rd_burstcount;
                q_addr[q_tail[QW-1:0]] <= (rd_address - base) / BYTES;
                q_len[q_tail[QW-1:0]] <= rd_burstcount;
                q_due[q_tail[QW-1:0]] <= now + latency_min + (r2 % lat_span);
                q_tail <= q_tail + 1;
                if (rd_address < base || (rd_address - base) / BYTES + rd_burstcount > DEPTH) begin
                    fault <= 1;
                    $display("avalon_memory: read outside memory at 0x%08x x%0d", rd_address, rd_burstcount);
                end
            end
            if (!q_empty && now >= q_due[q_head[QW-1:0]] && !rd_gap) begin
                rd_readdata <= mem[q_addr[q_head[QW-1:0]] + beat];
                rd_readdatavalid <= 1;
                if (beat + 1 == q_len[q_head[QW-1:0]]) begin
                    beat <= 0;
                    q_head <= q_head + 1;
                end else begin
                    beat <= beat + 1;
                end
            end
        end
    end

    // write bursts
    reg [31:0] w_word;
    reg [BURST_W-1:0] w_beat;
    reg [BURST_W-1:0] w_len;
    wire [31:0] w_index = (w_beat == 0) ? (wr_address - base) / BYTES : w_word + w_beat;
    integer i;
    always @(posedge clk) begin
        if (rst) begin
            w_beat <= 0;
            wr_beats <= 0;
        end else if (wr_write && !wr_waitrequest) begin
            wr_beats <= wr_beats + 1;
            if (w_beat == 0) begin
                w_word <= (wr_address - base) / BYTES;
                w_len <= wr_burstcount;
                if (wr_address < base || (wr_address - base) / BYTES + wr_burstcount > DEPTH) begin
                    fault <= 1;
                    $display("avalon_memory: write outside memory at 0x%08x x%0d", wr_address, wr_burstcount);
                end
            end
            for (i = 0; i < BYTES; i = i + 1)
                if (wr_byteenable[i]) mem[w_index][i*8 +: 8] <= wr_writedata[i*8 +: 8];
            if ((w_beat == 0 ? wr_burstcount : w_len) == w_beat + 1) w_beat <= 0;
            else w_beat <= w_beat + 1;
        end
    end

    // window faults (both ports; a read and a write in the same cycle: the read is recorded)
    always @(posedge clk) begin
        if (rst) begin
            win_fault <= 0;
            win_fault_addr <= 0;
            win_fault_beats <= 0;
            win_fault_write <= 0;
        end else begin
            if (wr_write && !wr_waitrequest && w_beat == 0 && outside_window(wr_address, wr_burstcount)) begin
                if (!win_fault) begin
                    win_fault_addr <= wr_address; win_fault_beats <= wr_burstcount; win_fault_write <= 1;
                end
                win_fault <= 1;
                $display("avalon_memory: write outside the window 0x%08x+0x%08x at 0x%08x x%0d",
                         win_base, win_size, wr_address, wr_burstcount);
            end
            if (rd_read && !rd_waitrequest && outside_window(rd_address, rd_burstcount)) begin
                if (!win_fault) begin
                    win_fault_addr <= rd_address; win_fault_beats <= rd_burstcount; win_fault_write <= 0;
                end
                win_fault <= 1;
                $display("avalon_memory: read outside the window 0x%08x+0x%08x at 0x%08x x%0d",
                         win_base, win_size, rd_address, rd_burstcount);
            end
        end
    end
endmodule
